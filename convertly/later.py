"""Calls made a little later, unless cancelled first, on one thread per process.

`call_later(delay, fn)` costs a lock and a heap push, not a thread: a file that converts in a
few milliseconds (most do) cancels its call before it is due and nothing else happens. The
thread starts on the first call in each process (a Celery worker forks its children after
the parent imported this module, and a forked child has none of the parent's threads).
A call runs on that thread; an exception it raises is logged, never propagated.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Call:
    """A pending call; `cancel()` makes sure it will not run (if it has not started)."""

    __slots__ = ("cancelled", "due", "fn")

    def __init__(self, due: float, fn: Callable[[], None]) -> None:
        self.due, self.fn, self.cancelled = due, fn, False

    def cancel(self) -> None:
        self.cancelled = True


class _Scheduler:
    def __init__(self) -> None:
        self._order = itertools.count()
        self._forked()
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        """A fresh start: no thread, no pending call, and a lock no other thread holds."""
        self._wake = threading.Condition()
        self._heap: list[tuple[float, int, Call]] = []
        self._pid: int | None = None

    def call_later(self, delay: float, fn: Callable[[], None]) -> Call:
        call = Call(time.monotonic() + delay, fn)
        with self._wake:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="convertly-later", daemon=True).start()
            heapq.heappush(self._heap, (call.due, next(self._order), call))
            if self._heap[0][2] is call:
                self._wake.notify()
        return call

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    if self._heap and self._heap[0][2].cancelled:
                        heapq.heappop(self._heap)
                        continue
                    self._wake.wait(self._heap[0][0] - time.monotonic() if self._heap
                                    else None)
                _, _, call = heapq.heappop(self._heap)
            if call.cancelled:
                continue
            try:
                call.fn()
            except Exception:
                log.exception("a delayed call failed")


_scheduler = _Scheduler()


def call_later(delay: float, fn: Callable[[], None]) -> Call:
    """Run `fn` in about `delay` seconds on this process's scheduling thread, unless the
    returned call is cancelled before."""
    return _scheduler.call_later(delay, fn)
