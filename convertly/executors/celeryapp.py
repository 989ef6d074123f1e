"""The Celery app of distributed mode as both of its sides configure it: the API process
sends tasks with it (`CeleryExecutor`), and the workers (`workers.tasks`) register their task
functions on it under the names declared here.

The API process sends every task by name, so it imports no task code: a task's name and
arguments are the whole contract between the two sides.

- `RUN_FILE` (job id, file index, finalize queue): convert one file of a stored job;
- `FINALIZE` (job id): bundle a job's outputs when asked and give it its final status;
- `CONVERT` (source key, spec, output prefix, reply list): one sync conversion, whose
  outcome goes to a Redis list the API process waits on;
- `STREAM_RENDITION` (stream id, rendition index): encode one rendition of a video stream
  (media queue); the task that completes the ladder sends
- `STREAM_PACKAGE` (stream id): package a video stream's renditions (media queue).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from celery import Celery
from kombu.transport import redis as redis_transport

from convertly import priority
from convertly.settings import Settings

TASK_PREFIX = "convertly."  # every Convertly task's name starts so (the lease sweep relies on it)
RUN_FILE = TASK_PREFIX + "run_file"
FINALIZE = TASK_PREFIX + "finalize"
CONVERT = TASK_PREFIX + "convert"
STREAM_RENDITION = TASK_PREFIX + "stream_rendition"
STREAM_PACKAGE = TASK_PREFIX + "stream_package"


# The message header that carries the id of the request that queued a task (its log lines
# in the worker carry it too).
REQUEST_ID_HEADER = "convertly_request_id"


def queue_keys(queue: str) -> list[str]:
    """The Redis lists that hold `queue`'s waiting messages: kombu's Redis transport keeps
    one per priority level, the most urgent under the queue's own name."""
    sep = redis_transport.Channel.sep
    return [queue if level == 0 else f"{queue}{sep}{level}" for level in priority.LEVELS]


def run_file_target(message: Any) -> tuple[str, int] | None:
    """The (job id, file index) of a RUN_FILE message as kombu's Redis transport stores it
    (a queue list's entry, or the first item of an unacknowledged one), decoded from JSON;
    None for any other message."""
    try:
        if message["headers"]["task"] != RUN_FILE:
            return None
        body = message["body"]
        if message["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(args[0]), int(args[1])
    except (LookupError, TypeError, ValueError, AttributeError):
        return None


def make_app(settings: Settings) -> Celery:
    """A Celery app configured for these settings, with no task registered: what the API
    process sends with, and what `workers.tasks` registers the tasks on."""
    app = Celery("convertly", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        # A task is acknowledged only when it ends, and a worker process that dies mid-task
        # (SIGKILL, OOM) gets its message requeued, so no accepted file is lost.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        worker_max_tasks_per_child=settings.worker_max_tasks_per_child,
        worker_max_memory_per_child=settings.worker_max_memory_per_child,
        task_default_queue=settings.image_queue,
        broker_transport_options={
            # A message a dead worker took is delivered again after this many seconds;
            # longer than the hard time limit, so a running task is never handed out twice.
            "visibility_timeout": settings.task_time_limit + 60,
            # A list per level and queue, the most urgent taken first (convertly.priority).
            "priority_steps": list(priority.LEVELS),
        },
        # No result backend: outcomes live in the job store, and sync replies in Redis lists.
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_hijack_root_logger=False,
    )
    app.conf.convertly_settings = settings
    return app
