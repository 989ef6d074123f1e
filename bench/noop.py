"""A bare Celery app with a no-op task, to measure Celery's own dispatch cost beside ours.
The broker comes from BENCH_BROKER_URL."""

from __future__ import annotations

import os

from celery import Celery

app = Celery("bench", broker=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0"),
             set_as_current=False)
app.conf.update(task_serializer="json", accept_content=["json"], task_ignore_result=True,
                task_acks_late=True, worker_prefetch_multiplier=1,
                worker_hijack_root_logger=False)


@app.task(name="bench.noop", shared=False)
def noop(counter: str) -> None:
    import redis

    client = redis.Redis.from_url(app.conf.broker_url)
    client.incr(counter)
    client.close()
