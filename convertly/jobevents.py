"""Finished-job notifications: how a request that waits for a job
(`GET /api/jobs/{id}?wait=SECONDS`) learns that the job finished, without reading the job
store in a tight loop.

Every process has one `JobEvents` hub (`Services.events`). Where a job becomes finished,
`finished(job_id)` wakes that process's waiters and, when the state has a finished-job
channel (distributed mode: Redis pub/sub, `convertly.state.redis.events`), publishes the id
on it; each API process listens on the channel (the app's lifespan) and hands what it hears
to its hub's `notify`. The embedded executor finalises jobs in its pool processes, so the API
process notifies its own hub when a finalisation comes back (`executors.inprocess`).

Notifications are hints, never the truth: `until_finished` reads the job again at least
every `recheck` seconds, so a lost message (a Redis restart, another replica's cancel) delays
an answer by at most that much. Nobody waiting costs nothing but the PUBLISH per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from convertly.models import Job
    from convertly.state.base import FinishedChannel

log = logging.getLogger("convertly.jobevents")

RECHECK = 1.0  # seconds between a waiter's reads of the job store, whatever it hears
HANGUP_CHECK = 1.0  # seconds between a waiter's looks at its client's connection


class Waiter:
    """One waiting request. `wake()` may be called from any thread."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, timeout: float) -> bool:
        """True when woken (since the last call), False after `timeout` seconds."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        self._event.clear()
        return True


class JobEvents:
    """A process's waiters by job id. `channel`, when given, tells the other processes
    (distributed mode) and is what the API process listens on."""

    def __init__(self, channel: FinishedChannel | None = None, *,
                 recheck: float = RECHECK) -> None:
        self.recheck = recheck
        self.channel = channel
        self._lock = threading.Lock()
        self._waiters: dict[str, set[Waiter]] = {}

    def notify(self, job_id: str) -> None:
        """Wake this process's waiters on `job_id`. Safe from any thread."""
        with self._lock:
            waiters = tuple(self._waiters.get(job_id, ()))
        for waiter in waiters:
            waiter.wake()

    def notify_all(self) -> None:
        """Wake every waiter, to read its job again (after notifications may have been lost)."""
        with self._lock:
            waiters = [w for group in self._waiters.values() for w in group]
        for waiter in waiters:
            waiter.wake()

    def finished(self, job_id: str) -> None:
        """`job_id` just finished: wake the waiters here and tell the other processes. A
        failure to publish is logged, never raised: the waiters' rechecks cover it."""
        self.notify(job_id)
        if self.channel is None:
            return
        try:
            self.channel.publish(job_id)
        except Exception as exc:
            log.warning("job %s: finish notification not published: %r", job_id, exc)

    def waiting(self, job_id: str) -> int:
        """How many waiters `job_id` has in this process."""
        with self._lock:
            return len(self._waiters.get(job_id, ()))

    @contextlib.contextmanager
    def watch(self, job_id: str) -> Iterator[Waiter]:
        """A waiter on `job_id`, registered until the block ends (call inside a running loop)."""
        waiter = Waiter()
        with self._lock:
            self._waiters.setdefault(job_id, set()).add(waiter)
        try:
            yield waiter
        finally:
            with self._lock:
                group = self._waiters.get(job_id)
                if group is not None:
                    group.discard(waiter)
                    if not group:
                        del self._waiters[job_id]

    async def wait(self, job_id: str, timeout: float) -> bool:
        """True when `job_id` is notified within `timeout` seconds, else False."""
        with self.watch(job_id) as waiter:
            return await waiter.wait(timeout)


async def until_finished(events: JobEvents, job_id: str, timeout: float,
                         reload: Callable[[], Awaitable[Job]],
                         gone: Callable[[], Awaitable[bool]]) -> Job:
    """The job (`reload()`, which raises when there is none) as soon as it is finished, or as
    it is after `timeout` seconds. It is read again when notified and at least every
    `events.recheck` seconds; `gone()` (the client hung up) is asked at least every
    HANGUP_CHECK seconds and ends the wait early."""
    deadline = time.monotonic() + timeout
    # The waiter is registered before the first read, so a job that finishes in between
    # cannot send its notification to nobody.
    with events.watch(job_id) as waiter:
        job = await reload()
        read_at = time.monotonic()
        while not job.status.finished:
            now = time.monotonic()
            if now >= deadline:
                break
            woke = await waiter.wait(max(0.0, min(deadline - now, HANGUP_CHECK,
                                                  read_at + events.recheck - now)))
            if await gone():
                break
            now = time.monotonic()
            if woke or now >= deadline or now >= read_at + events.recheck:
                job = await reload()
                read_at = now
    return job
