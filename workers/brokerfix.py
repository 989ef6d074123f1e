"""A guard around kombu Redis-transport faults, applied when the Celery app is built.

When the broker connection drops while this worker holds unacknowledged messages, kombu
keeps the old channel's bookkeeping: closing that channel pushes the messages back to their
queues, and a task that ends after the reconnect acknowledges its message, both through a
connection already torn down. Either raises AttributeError, which Celery reports as an
"Unrecoverable error", and the worker stops consuming. The messages are safe without those
calls: they stay in the broker's unacked set and return to their queues once no live worker
holds them (workers.leases, or at the latest the visibility timeout), and every task here is
idempotent (a redelivered file that has its result is
skipped). So the guard logs and lets the worker go on with its new connection.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import redis
from kombu.transport import redis as redis_transport

log = logging.getLogger("convertly.worker")


def _torn_down(qos: Any) -> bool:
    connection = getattr(qos.channel, "connection", None)
    return connection is None or getattr(connection, "client", None) is None


def _guard(method: Callable[..., Any], what: str) -> Callable[..., Any]:
    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except AttributeError:
            if not _torn_down(self):
                raise  # a fault of another kind
            log.warning("broker connection was lost: %s skipped; the message returns to "
                        "its queue once no live worker holds it", what)
            if what == "restore":
                self._delivered.clear()
            return None
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if what == "restore":
                raise  # kombu's own handling of a channel closed with the broker away
            log.warning("broker unreachable (%s): %s skipped; the message returns to its "
                        "queue once no live worker holds it", exc, what)
            return None

    guarded._convertly_guard = True  # type: ignore[attr-defined]
    return guarded


def apply() -> None:
    qos: Any = redis_transport.QoS
    if getattr(qos.ack, "_convertly_guard", False):
        return
    qos.restore_unacked = _guard(qos.restore_unacked, "restore")
    qos.ack = _guard(qos.ack, "acknowledgement")
    qos.reject = _guard(qos.reject, "rejection")
