"""Worker leases: the files a vanished worker held go back to their queues within about a
lease (CONVERTLY_WORKER_LEASE, 30 s), not after the broker's visibility timeout.

Kombu's Redis transport keeps each delivered message in its `unacked` hash until the worker
acknowledges it (here: when the task ends). A worker process killed mid-task is noticed by
its Celery main process, which requeues the message at once. When the main process goes as
well (the host is lost, the container killed), nothing requeues it but the transport's
visibility timeout, which must outlast the longest task: the hard time limit plus a minute,
about 12 minutes by default. So every worker also keeps a lease:

- its main process writes `convertly:worker:<node name>` every lease/6 seconds, expiring
  after a lease, listing the delivery tags of the messages it holds (running, waiting for
  a pool process or for a retry's countdown);
- and at most one worker per beat interval sweeps (one that has reached Redis for a whole
  lease, so that every live worker has listed its messages since): a Convertly message
  unacknowledged for over a lease that no live worker lists goes back to the front of its
  queue, the way kombu's own restore puts it back.

A file whose redelivered task finds it done is skipped (tasks are idempotent), so a worker
wrongly taken for gone (its main process stalled for a whole lease) costs a repeated
conversion at worst. The hosts' clocks must agree to within a lease (kombu stamps each
delivery with the delivering host's clock).

This module writes the leases; their key names and the reader the API uses (/healthz,
`convertly workers`) are in `convertly.executors.leases`."""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import redis
from celery import Celery, bootsteps

from convertly.executors.celeryapp import TASK_PREFIX
from convertly.executors.leases import (
    UNACKED,
    UNACKED_INDEX,
    WORKER_KEY,
    WORKERS,
    beat_interval,
    connect,
    live_workers,
)

log = logging.getLogger("convertly.worker")

FORGET_AFTER = 24 * 3600  # a node name leaves WORKERS a day after its last beat
SWEEP_LOCK = "convertly:lease-sweep"


def held_tags() -> list[str]:
    """Delivery tags of the messages this worker's main process holds unacknowledged."""
    from celery.worker import state

    requests: list[Any] = []
    for _ in range(5):  # the consumer thread may change the dict while it is copied
        try:
            requests = list(state.requests.values())
            break
        except RuntimeError:
            continue
    tags = []
    for request in requests:
        tag = getattr(getattr(request, "message", None), "delivery_tag", None)
        if tag:
            tags.append(str(tag))
    return tags


def beat(client: Any, node: str, lease: float, tags: Iterable[str],
         queues: Iterable[str] = ()) -> None:
    """Renew `node`'s lease: the delivery tags it holds and the queues it consumes."""
    now = time.time()
    record = {"at": now, "held": sorted(tags), "queues": sorted(queues)}
    with client.pipeline() as pipe:
        pipe.set(WORKER_KEY + node, json.dumps(record), ex=max(1, round(lease)))
        pipe.zadd(WORKERS, {node: now})
        pipe.zremrangebyscore(WORKERS, "-inf", now - FORGET_AFTER)
        pipe.execute()


def orphans(client: Any, lease: float, now: float | None = None) -> list[str]:
    """Delivery tags of the Convertly messages delivered over a lease ago that no live
    worker holds."""
    now = time.time() if now is None else now
    old = client.zrange(UNACKED_INDEX, "-inf", now - lease, byscore=True)
    if not old:
        return []
    held = {tag for record in live_workers(client).values() for tag in record["held"]}
    found = []
    for raw_tag in old:
        tag = raw_tag.decode() if isinstance(raw_tag, bytes) else str(raw_tag)
        if tag in held:
            continue
        entry = client.hget(UNACKED, tag)
        if entry is None:  # acknowledged meanwhile
            continue
        try:
            task = json.loads(entry)[0]["headers"]["task"]
        except (ValueError, LookupError, TypeError):
            continue
        if isinstance(task, str) and task.startswith(TASK_PREFIX):
            found.append(tag)
    return found


def requeue_orphans(app: Celery, client: Any, lease: float,
                    now: float | None = None) -> list[str]:
    """Put the orphaned messages (`orphans`) back at the front of their queues, through
    kombu's own restore (atomic against an acknowledgement racing it); returns their tags."""
    tags = orphans(client, lease, now)
    if tags:
        with app.connection_for_write() as conn:
            qos = conn.default_channel.qos
            for tag in tags:
                qos.restore_by_tag(tag, leftmost=True)
        log.warning("requeued %d file(s) held by workers silent for over %g s (host lost?)",
                    len(tags), lease)
    return tags


class Lease:
    """A worker main process's heartbeat thread, which also takes its turn at sweeping."""

    def __init__(self, app: Celery, node: str, lease: float, broker_url: str,
                 tags: Callable[[], list[str]] = held_tags,
                 queues: Iterable[str] = ()) -> None:
        self.app, self.node, self.lease = app, node, lease
        self.interval = beat_interval(lease)
        self.tags = tags
        self.queues = list(queues)
        self.client: Any = connect(broker_url)
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-lease", daemon=True)

    def start(self) -> None:
        self._thread.start()
        atexit.register(self.close)

    def close(self) -> None:
        """Stop beating and give the lease up (after the worker has shut down: until then
        its running tasks must stay listed)."""
        if os.getpid() != self._pid:  # a forked pool process exiting: not its lease
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.interval + 5)
        with contextlib.suppress(redis.RedisError), self.client.pipeline() as pipe:
            pipe.delete(WORKER_KEY + self.node)
            pipe.zrem(WORKERS, self.node)
            pipe.execute()

    def step(self, sweep: bool = True) -> list[str]:
        """One beat, then (with `sweep`) a sweep when no other worker swept this interval."""
        beat(self.client, self.node, self.lease, self.tags(), self.queues)
        if not sweep or not self.client.set(SWEEP_LOCK, self.node, nx=True,
                                            px=max(1, int(self.interval * 1000))):
            return []
        return requeue_orphans(self.app, self.client, self.lease)

    def _run(self) -> None:
        # Sweep only after a whole lease of beats that reached Redis: after a broker outage
        # (or this worker's start), the other live workers need that long to beat again,
        # and until they have, what they hold would look orphaned.
        beating_since: float | None = None
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                self.step(sweep=beating_since is not None and now - beating_since >= self.lease)
                if beating_since is None:
                    beating_since = now
            except Exception as exc:  # the broker is down: the next beat tries again
                if beating_since is not None:
                    log.warning("worker lease: %s", exc)
                beating_since = None
            self._stop.wait(self.interval)


class LeaseStep(bootsteps.StartStopStep):  # type: ignore[misc]  # celery is untyped
    """Runs the worker's Lease from the moment it consumes. It is not stopped with the
    worker's other parts: it beats on while a warm shutdown lets running tasks finish."""

    requires: ClassVar[set[str]] = {"celery.worker.components:Pool"}

    def create(self, worker: Any) -> Lease:
        settings = worker.app.conf.convertly_settings
        self.lease = Lease(worker.app, worker.hostname, settings.worker_lease,
                           settings.broker_url,
                           queues=list(worker.app.amqp.queues.consume_from or ()))
        return self.lease

    def start(self, worker: Any) -> None:
        self.lease.start()

    def stop(self, worker: Any) -> None:
        pass
