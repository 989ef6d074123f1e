"""The finished-job hub (convertly.jobevents): waking async waiters from other threads,
timeouts, and the Redis channel (convertly.state.redis.events) against a real
redis-server, across a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from convertly.jobevents import JobEvents
from convertly.state.base import FinishedListener
from convertly.state.redis.events import FINISHED_CHANNEL, RedisFinishedChannel
from tests.infra import RedisServer


def test_notify_from_another_thread_wakes_the_waiter() -> None:
    events = JobEvents()

    async def scenario() -> tuple[bool, float, int]:
        started = time.monotonic()
        threading.Timer(0.2, events.notify, args=("job-1",)).start()
        woke = await events.wait("job-1", 10)
        return woke, time.monotonic() - started, events.waiting("job-1")

    woke, took, left = asyncio.run(scenario())
    assert woke and 0.15 < took < 5, took
    assert left == 0  # the waiter is gone once its wait ends


def test_a_wait_times_out_and_other_jobs_do_not_wake_it() -> None:
    events = JobEvents()

    async def scenario() -> tuple[bool, float]:
        started = time.monotonic()
        threading.Timer(0.05, events.notify, args=("another-job",)).start()
        woke = await events.wait("job-1", 0.4)
        return woke, time.monotonic() - started

    woke, took = asyncio.run(scenario())
    assert not woke and 0.35 < took < 5, took


def test_notify_all_wakes_every_waiter_and_watch_keeps_one_registered() -> None:
    events = JobEvents()

    async def scenario() -> list[bool]:
        with events.watch("a") as first, events.watch("b") as second:
            assert (events.waiting("a"), events.waiting("b")) == (1, 1)
            threading.Timer(0.05, events.notify_all).start()
            woke = list(await asyncio.gather(first.wait(5), second.wait(5)))
            # Woken once: the next wait needs a new notification.
            woke.append(await first.wait(0.1))
        assert (events.waiting("a"), events.waiting("b")) == (0, 0)
        return woke

    assert asyncio.run(scenario()) == [True, True, False]


def test_finished_wakes_here_and_a_publish_failure_is_only_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    published: list[str] = []

    class Down:
        """A channel whose Redis is down."""

        def publish(self, job_id: str) -> None:
            published.append(job_id)
            raise redis.ConnectionError("Redis is down")

        async def listen(self, listener: FinishedListener) -> None:
            raise AssertionError("not listened to here")

    events = JobEvents(Down())

    async def scenario() -> bool:
        with events.watch("job-1") as waiter:
            events.finished("job-1")
            return await waiter.wait(5)

    with caplog.at_level(logging.WARNING, logger="convertly.jobevents"):
        assert asyncio.run(scenario())
    assert published == ["job-1"]
    assert "not published" in caplog.text


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis", appendonly=False) as server:
        yield server


def _published_until_heard(client: redis.Redis, job_id: str, timeout: float = 10) -> None:
    """PUBLISH `job_id` until a subscriber hears it (PUBLISH answers how many did)."""
    deadline = time.monotonic() + timeout
    while not client.publish(FINISHED_CHANNEL, job_id):
        assert time.monotonic() < deadline, "no subscriber on the channel"
        time.sleep(0.05)


def test_subscriber_forwards_published_ids_and_survives_a_redis_restart(
        redis_server: RedisServer) -> None:
    events = JobEvents()
    publisher = redis.Redis.from_url(redis_server.url)

    async def heard(job_id: str) -> bool:
        # Subscribed (again) first: a (re)subscription wakes every waiter by itself.
        await asyncio.to_thread(_published_until_heard, publisher, "probe")
        with events.watch(job_id) as waiter:
            assert await asyncio.to_thread(publisher.publish, FINISHED_CHANNEL, job_id) == 1
            return await waiter.wait(5)

    async def scenario() -> list[bool]:
        task = asyncio.create_task(RedisFinishedChannel(redis_server.url).listen(events))
        try:
            results = [await heard("job-before")]
            await asyncio.to_thread(redis_server.restart)
            results.append(await heard("job-after"))
            return results
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    try:
        assert asyncio.run(asyncio.wait_for(scenario(), 30)) == [True, True]
    finally:
        publisher.close()
