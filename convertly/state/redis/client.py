"""Redis client helpers shared by the distributed engine's stores (and by the Celery side,
which talks to the same Redis): `connect`, `guard` (an unreachable Redis becomes
StateUnavailableError; one that refuses this server StateMisconfiguredError, see `refusal`;
one out of memory StorageFullError), `transaction` (WATCH/MULTI with retries) and `P`, the
prefix of every key.

Layout (all keys under `cv:`):
    cv:job:*, cv:jobs:*, cv:unfinished, cv:finished, cv:idem:*   jobs (redis/jobs.py)
    cv:watchdog, cv:watchdog:lease   the job watchdog's lease and report (redis/jobs.py)
    cv:key:*, cv:keys, cv:limits:*   API keys and tenants' own limits (redis/keys.py)
    cv:file:*, cv:files:*, cv:expiring, cv:jobfiles:*, cv:lib:*, cv:bytes:*   stored files
                                  and each tenant's stored bytes (redis/files.py)
    cv:rl:*                       rate-limit buckets (redis/rates.py)
    cv:folders:*                  folders (redis/folders.py)
    cv:taxonomy:*                 library taxonomy terms and their slugs (redis/taxonomy.py)
    cv:stream:*, cv:streams:*, cv:playback:*   video streams (redis/streams.py)
    cv:plays:*                    video streams' playback counts (redis/playback.py)
    cv:wh:*                       webhooks (redis/webhooks.py)
    cv:events:finished            pub/sub channel: ids of jobs that just finished
                                  (redis/events.py)
    cv:lost:*                     deliveries of a task whose process died (workers.tasks)
    (reply keys)                  sync-conversion replies (redis/replies.py)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from convertly import diskspace
from convertly.errors import StateMisconfiguredError, StateUnavailableError

log = logging.getLogger("convertly.state")

T = TypeVar("T")
P = "cv:"


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=10,
                                socket_connect_timeout=3, health_check_interval=15,
                                retry_on_timeout=True)


# What to do about each refusal, by the error code of Redis's reply.
_PASSWORD = ("put the password Redis requires (its requirepass) in the URL, as "
             "redis://:PASSWORD@host:port/0")
_REFUSALS = {
    "NOAUTH": f"it requires a password and none was sent: {_PASSWORD}",
    "WRONGPASS": f"it refuses the password (or user) in the URL: {_PASSWORD}",
    "DENIED": "it runs in protected mode (no password set, and this client is not on its "
              "loopback interface): give Redis a password (requirepass) and put it in the "
              "URL as redis://:PASSWORD@host:port/0",
}


def refusal(exc: BaseException) -> str | None:
    """Why Redis refuses this client, with what to do, when `exc` is such a refusal (a wrong
    or missing password, protected mode): no retry helps those. None for anything else.
    Told apart by the error code Redis puts first in its reply (redis-py keeps it as
    `status_code`)."""
    if not isinstance(exc, redis.AuthenticationError | redis.ResponseError):
        return None
    code = getattr(exc, "status_code", None)
    if code in _REFUSALS:
        return f"{_REFUSALS[code]} ({code})"
    if isinstance(exc, redis.AuthenticationError):
        return f"it refuses this client's credentials: {_PASSWORD}"
    return None


def guard(fn: Callable[[], T]) -> T:
    """Run `fn`, a Redis call: an unreachable Redis raises StateUnavailableError, one that
    refuses this server StateMisconfiguredError, one over its `maxmemory` StorageFullError."""
    try:
        return fn()
    except redis.OutOfMemoryError as exc:
        raise diskspace.full("Redis memory (maxmemory, with a noeviction policy)", exc) from exc
    except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as exc:
        reason = refusal(exc)
        if reason is not None:
            log.error("Redis refuses this server: %s", reason)
            raise StateMisconfiguredError(reason=reason) from exc
        if isinstance(exc, redis.ResponseError):
            raise
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
