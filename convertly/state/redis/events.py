"""Finished-job notifications on Redis pub/sub (distributed mode): `RedisFinishedChannel`
PUBLISHes the id of a job that just finished on FINISHED_CHANNEL, and each API process
listens there for the requests it holds (`convertly.jobevents`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis
import redis.asyncio

from convertly.state.base import FinishedListener
from convertly.state.redis.client import P, connect

log = logging.getLogger("convertly.jobevents")

# Redis pub/sub ignores database numbers: deployments sharing one Redis hear each other's
# ids, which wake nobody (job ids are unique).
FINISHED_CHANNEL = f"{P}events:finished"
BACKOFF_MIN = 0.2  # seconds before the listener's first reconnect; doubles up to BACKOFF_MAX
BACKOFF_MAX = 5.0


class RedisFinishedChannel:
    """Publishes with a client that connects on first use; each `listen` has its own
    connection (asyncio), reconnecting with backoff whenever Redis goes away."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: Any = connect(url)

    def publish(self, job_id: str) -> None:
        self._client.publish(FINISHED_CHANNEL, job_id)

    async def listen(self, listener: FinishedListener) -> None:
        backoff = BACKOFF_MIN
        while True:
            client: Any = redis.asyncio.Redis.from_url(
                self.url, decode_responses=True, socket_connect_timeout=3,
                health_check_interval=15)
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(FINISHED_CHANNEL)
                    listener.notify_all()
                    backoff = BACKOFF_MIN
                    while True:
                        message = await pubsub.get_message(timeout=1.0)
                        if message is not None and message["type"] == "message":
                            listener.notify(message["data"])
            except (redis.RedisError, OSError) as exc:
                log.warning("job notifications: %r; reconnecting in %.1f s", exc, backoff)
            except Exception:
                log.exception("job notifications failed; reconnecting in %.1f s", backoff)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
