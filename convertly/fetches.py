"""Downloads of `sourceUrl` files: on a bounded thread pool of their own, shared fairly
between tenants, and stopped when their client goes away.

The routes' blocking work (disk, database) runs on the event loop's default executor; a
download runs for as long as its origin takes (up to CONVERTLY_FETCH_TIMEOUT), so it never
runs there. Each API process has one `FetchPool` of CONVERTLY_FETCH_CONCURRENCY threads. A
tenant runs at most CONVERTLY_FETCH_TENANT_CONCURRENCY downloads at once; its further ones
wait, at most CONVERTLY_FETCH_TENANT_QUEUE of them (more are refused with QueueFullError,
503 with Retry-After). When a thread frees up, the waiting download of the tenant that runs
the fewest goes first (the oldest among equals), so a tenant with many slow origins cannot
keep the others waiting behind its queue.

A download waits and runs with a `gone` awaitable beside it (the client hanging up): when
that ends first, a waiting download leaves the queue and a running one is stopped at once
(its socket is shut down under the thread, `outbound.Stop`), and `run` raises
DownloadCancelled. All the bookkeeping happens on the event loop, so it needs no lock.

`download_source` is the download itself (run on the pool), its failures said as the
client's errors about its `sourceUrl`.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from convertly import diskspace, outbound
from convertly.errors import FileTooLargeError, InvalidFieldError, QueueFullError
from convertly.settings import Settings

T = TypeVar("T")


class FetchPool:
    """Runs blocking downloads `fn(stop)` on `size` threads of its own, at most `per_tenant`
    at once for one tenant, with at most `queue_per_tenant` more of it waiting."""

    def __init__(self, size: int, per_tenant: int, queue_per_tenant: int) -> None:
        self.size = size
        self.per_tenant = min(per_tenant, size)
        self.queue_per_tenant = queue_per_tenant
        self._threads = concurrent.futures.ThreadPoolExecutor(size,
                                                              thread_name_prefix="fetch")
        self._running: collections.Counter[str] = collections.Counter()
        self._waiting: dict[str, collections.deque[asyncio.Future[None]]] = {}
        self._stops: set[outbound.Stop] = set()

    @property
    def running(self) -> int:
        return sum(self._running.values())

    def waiting(self, tenant: str) -> int:
        return len(self._waiting.get(tenant, ()))

    async def run(self, tenant: str, fn: Callable[[outbound.Stop], T],
                  gone: Callable[[], Awaitable[object]]) -> T:
        """`fn(stop)` on one of the pool's threads once the tenant's turn comes; its result.
        Raise QueueFullError when the tenant has too many downloads waiting already, and
        outbound.DownloadCancelled once `gone()` returns first (the download is stopped and
        its thread has let go of everything by then)."""
        watcher = asyncio.ensure_future(gone())
        try:
            await self._acquire(tenant, watcher)
            try:
                return await self._run(fn, watcher)
            finally:
                self._release(tenant)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher

    async def _acquire(self, tenant: str, watcher: asyncio.Future[object]) -> None:
        if self._free(tenant) and not self._waiting.get(tenant):
            self._running[tenant] += 1
            return
        queue = self._waiting.setdefault(tenant, collections.deque())
        if len(queue) >= self.queue_per_tenant:
            raise QueueFullError(
                f"This account has {self._running[tenant]} sourceUrl downloads running and "
                f"{len(queue)} waiting; retry in a few seconds.")
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(turn)
        try:
            either: set[asyncio.Future[Any]] = {turn, watcher}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            self._leave(tenant, turn)
            raise
        if not turn.done():
            self._leave(tenant, turn)
            raise outbound.DownloadCancelled("the client went away while the download waited")

    def _leave(self, tenant: str, turn: asyncio.Future[None]) -> None:
        """Give up a place in the queue, or the slot it was just given."""
        if turn.done() and not turn.cancelled():
            self._release(tenant)
            return
        turn.cancel()
        queue = self._waiting.get(tenant)
        if queue is not None and turn in queue:
            queue.remove(turn)
            if not queue:
                del self._waiting[tenant]

    async def _run(self, fn: Callable[[outbound.Stop], T], watcher: asyncio.Future[object]
                   ) -> T:
        stop = outbound.Stop()
        self._stops.add(stop)
        work = asyncio.get_running_loop().run_in_executor(self._threads, fn, stop)
        try:
            either: set[asyncio.Future[Any]] = {work, watcher}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not work.done():
                stop.set()  # the client went away, or this request was cancelled
                # The thread ends at once (its socket was shut down); wait for it, so the
                # caller may remove what it was writing.
                await asyncio.shield(asyncio.wait({work}))
            self._stops.discard(stop)
        if stop.is_set:
            with contextlib.suppress(Exception):
                work.result()
            raise outbound.DownloadCancelled("the client went away during the download")
        return work.result()

    def _free(self, tenant: str) -> bool:
        return self.running < self.size and self._running[tenant] < self.per_tenant

    def _release(self, tenant: str) -> None:
        self._running[tenant] -= 1
        if self._running[tenant] <= 0:
            del self._running[tenant]
        self._hand_out()

    def _hand_out(self) -> None:
        """Give free threads to waiting downloads: the tenant running the fewest first."""
        while self.running < self.size:
            ready = [t for t, queue in self._waiting.items()
                     if queue and self._running[t] < self.per_tenant]
            if not ready:
                return
            # dicts keep insertion order: among equals, the tenant that queued first
            tenant = min(ready, key=lambda t: self._running[t])
            queue = self._waiting[tenant]
            turn = queue.popleft()
            if not queue:
                del self._waiting[tenant]
            self._running[tenant] += 1
            turn.set_result(None)

    def close(self) -> None:
        """Stop every download and let the threads go (at shutdown)."""
        for stop in list(self._stops):
            stop.set()
        self._threads.shutdown(wait=False, cancel_futures=True)


def download_source(url: str, dest: Path, settings: Settings, stop: outbound.Stop | None
                    ) -> outbound.Download:
    """GET a `sourceUrl` into `dest` under the per-file size limit and the fetch settings
    (blocking: run it on the pool). A refused or failed download is a 400 naming
    `sourceUrl`, one over the limit a 413; a full disk is the server's 507, naming where
    `dest` is; DownloadCancelled passes through."""
    try:
        return outbound.download(
            url, dest, max_bytes=settings.max_file_bytes, timeout=settings.fetch_timeout,
            allow_private=settings.fetch_allow_private, setting="CONVERTLY_FETCH_ALLOW_PRIVATE",
            stop=stop, proxy=outbound.proxy_from(settings))
    except outbound.RefusedURLError as exc:
        raise InvalidFieldError("sourceUrl", str(exc)) from exc
    except outbound.DownloadTooLarge as exc:
        raise FileTooLargeError(
            f"The file at sourceUrl is larger than the limit of {settings.max_file_bytes} bytes "
            f"per file ({exc.message}; setting CONVERTLY_MAX_FILE_BYTES).") from exc
    except outbound.DownloadFailed as exc:
        if diskspace.is_full(exc):
            raise diskspace.full(f"the upload spool {dest.parent.parent}", exc) from exc
        raise InvalidFieldError("sourceUrl", f"could not be downloaded: {exc.message}.") from exc
