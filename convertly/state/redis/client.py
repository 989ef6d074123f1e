"""Redis client helpers shared by the distributed engine's stores (and by the Celery side,
which talks to the same Redis): `connect`, `guard` (an unreachable Redis becomes
StateUnavailableError), `transaction` (WATCH/MULTI with retries) and `P`, the prefix of every
key.

Layout (all keys under `cv:`):
    cv:job:*, cv:jobs:*, cv:unfinished, cv:finished, cv:idem:*   jobs (redis/jobs.py)
    cv:watchdog, cv:watchdog:lease   the job watchdog's lease and report (redis/jobs.py)
    cv:key:*, cv:keys             API keys (redis/keys.py)
    cv:file:*, cv:files:*, cv:expiring, cv:jobfiles:*, cv:lib:*   stored files (redis/files.py)
    cv:folders:*                  folders (redis/folders.py)
    cv:wh:*                       webhooks (redis/webhooks.py)
    cv:events:finished            pub/sub channel: ids of jobs that just finished
                                  (redis/events.py)
    cv:lost:*                     deliveries of a task whose process died (workers.tasks)
    (reply keys)                  sync-conversion replies (redis/replies.py)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import redis

from convertly.errors import StateUnavailableError

T = TypeVar("T")
P = "cv:"


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=10,
                                socket_connect_timeout=3, health_check_interval=15,
                                retry_on_timeout=True)


def guard(fn: Callable[[], T]) -> T:
    """Run `fn`, a Redis call: an unreachable Redis raises StateUnavailableError."""
    try:
        return fn()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StateUnavailableError() from exc


def transaction(client: Any, key: str, body: Callable[[Any], T]) -> T:
    """Run `body(pipe)` under WATCH `key`, retrying when another writer got there first."""
    def attempt() -> T:
        with client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    return body(pipe)
                except redis.WatchError:
                    continue
    return guard(attempt)
