"""The sourceUrl fetch pool: its own threads, a cap per tenant, waiting downloads of other
tenants first, a refusal past the queue, and downloads stopped when their client goes away
(real downloads from a trickling origin on loopback)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from convertly import outbound
from convertly.errors import QueueFullError
from convertly.fetches import FetchPool
from tests.trickle import BODY_TRICKLE, Trickler


class Held:
    """Blocking jobs for the pool that run until released (or stopped), recording the order
    in which they started and on which thread."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.threads: set[str] = set()
        self._release: dict[str, threading.Event] = {}

    def job(self, name: str) -> Callable[[outbound.Stop], str]:
        event = self._release[name] = threading.Event()

        def run(stop: outbound.Stop) -> str:
            self.started.append(name)
            self.threads.add(threading.current_thread().name)
            while not event.wait(0.01):
                if stop.is_set:
                    raise outbound.DownloadCancelled("stopped")
            return name
        return run

    def release(self, name: str) -> None:
        self._release[name].set()


async def _never() -> None:
    await asyncio.Event().wait()


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_waiting_downloads_of_other_tenants_go_first() -> None:
    async def scenario() -> list[str]:
        pool = FetchPool(size=2, per_tenant=2, queue_per_tenant=10)
        held = Held()
        tasks = [asyncio.create_task(pool.run("x", held.job(f"x{i}"), _never))
                 for i in range(4)]
        await _until(lambda: len(held.started) == 2)
        tasks.append(asyncio.create_task(pool.run("y", held.job("y0"), _never)))
        await _until(lambda: pool.waiting("y") == 1)
        held.release("x0")  # a thread frees up: y runs fewer than x, so y goes first
        await _until(lambda: len(held.started) == 3)
        for name in ("x1", "y0", "x2", "x3"):
            held.release(name)
            await asyncio.sleep(0.05)
        results = await asyncio.gather(*tasks)
        assert sorted(results) == ["x0", "x1", "x2", "x3", "y0"]
        assert all(name.startswith("fetch") for name in held.threads)
        pool.close()
        return held.started

    started = asyncio.run(scenario())
    assert started[:3] == ["x0", "x1", "y0"], started


def test_a_tenant_holds_at_most_its_share_and_its_queue_is_bounded() -> None:
    async def scenario() -> None:
        pool = FetchPool(size=4, per_tenant=2, queue_per_tenant=1)
        held = Held()
        x = [asyncio.create_task(pool.run("x", held.job(f"x{i}"), _never))
             for i in range(3)]
        await _until(lambda: len(held.started) == 2 and pool.waiting("x") == 1)
        with pytest.raises(QueueFullError, match="2 sourceUrl downloads running and 1 waiting"):
            await pool.run("x", held.job("x3"), _never)
        # Another tenant starts at once on a free thread.
        y = asyncio.create_task(pool.run("y", held.job("y0"), _never))
        await _until(lambda: "y0" in held.started)
        assert pool.running == 3
        for name in ("x0", "x1", "x2", "y0"):
            held.release(name)
        await asyncio.gather(*x, y)
        assert pool.running == 0
        pool.close()

    asyncio.run(scenario())


def test_a_client_that_goes_away_stops_its_download(tmp_path: Path) -> None:
    """Running: the socket is shut down under the thread, which ends at once. Waiting: the
    download leaves the queue without ever connecting."""
    async def scenario(origin: Trickler) -> float:
        pool = FetchPool(size=1, per_tenant=1, queue_per_tenant=5)
        gone = asyncio.Event()

        def fetch(name: str) -> Callable[[outbound.Stop], outbound.Download]:
            def run(stop: outbound.Stop) -> outbound.Download:
                return outbound.download(origin.url("/slow.jpg"), tmp_path / name,
                                         max_bytes=10**6, timeout=30, allow_private=True,
                                         setting="CONVERTLY_FETCH_ALLOW_PRIVATE", stop=stop)
            return run

        running = asyncio.create_task(pool.run("x", fetch("a"), gone.wait))
        waiting = asyncio.create_task(pool.run("x", fetch("b"), gone.wait))
        await _until(lambda: origin.accepted == 1 and pool.waiting("x") == 1)
        await asyncio.sleep(0.3)
        started = time.monotonic()
        gone.set()
        for task in (running, waiting):
            with pytest.raises(outbound.DownloadCancelled):
                await task
        took = time.monotonic() - started
        assert (pool.running, pool.waiting("x")) == (0, 0)
        pool.close()
        return took

    with Trickler(BODY_TRICKLE, 0.2, 10) as origin:
        took = asyncio.run(scenario(origin))
        assert took < 1.0, took
        assert origin.wait_closed(2) < 2
        assert origin.accepted == 1  # the waiting one never connected
