"""Per-task resource limits inside a conversion process (an embedded pool worker or a Celery
pool child): memory through RLIMIT_DATA, CPU time through a watchdog thread and RLIMIT_CPU.

- Memory: the process's data segment is capped at CONVERTLY_TASK_MAX_MEMORY for its whole
  life (the programs it runs inherit the cap). An allocation over it fails where it happens:
  libvips, Pillow and Python report it (pyvips.Error, MemoryError), so the task unwinds,
  the file fails and the memory is returned; MemoryError becomes 413 MEMORY_LIMIT.
- CPU: while a task runs, a watchdog thread compares the process's CPU time with
  CONVERTLY_TASK_CPU_SECONDS. Over it, SIGUSR2 makes the main thread raise (the file fails
  with CONVERSION_TIMEOUT and the process goes on). Native code that does not come back to
  Python (or holds the GIL, so that no thread can act) is stopped by the kernel:
  RLIMIT_CPU is set HARD_STOP_GRACE seconds past the limit for each task, and its SIGXCPU
  kills the process; the executor replaces it (the embedded pool's crash count, or the
  Celery task's count of lost deliveries, then fails the file). `process.run` lifts the
  CPU limit for the programs it starts: they have their own timeouts.
- Cancel: a task may name a `stop_when` check (a job file: "was its job cancelled?"),
  which the watchdog thread asks every CANCEL_POLL seconds. When it says yes, SIGUSR2 makes
  the main thread raise TaskCancelled: the task unwinds, `process.run` kills the program it
  was waiting for, nothing is recorded, and the process goes on. Native code that does not
  come back to Python within CANCEL_GRACE seconds (librsvg drawing one huge filter, say)
  has its process killed; the executor replaces it and, seeing the job cancelled, counts
  that death against no file.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import logging
import math
import os
import resource
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

from convertly.errors import ConversionTimeoutError, ConvertlyError, MemoryLimitError

log = logging.getLogger("convertly.worker")

HARD_STOP_GRACE = 10.0  # CPU seconds past the limit before the kernel kills the process
WATCH_PERIOD = 0.25
RESIGNAL_PERIOD = 0.5
STOP_SIGNAL = signal.SIGUSR2
CANCEL_POLL = 1.0  # seconds between two `stop_when` checks of a running task
CANCEL_GRACE = 3.0  # seconds a cancelled task may take to unwind before its process is killed


class TaskLimitExceeded(BaseException):
    """A task went over a resource limit. A BaseException, so that no `except Exception`
    on the way (a library's, a converter's) takes it for an ordinary failure."""

    def __init__(self, error: ConvertlyError) -> None:
        super().__init__(error.message)
        self.error = error


class TaskCancelled(BaseException):
    """The running task's `stop_when` check said stop (its job was cancelled). A
    BaseException for the same reason as TaskLimitExceeded; the caller records nothing."""


class TaskGuard:
    """Installed once per process (from its main thread); `task()` wraps each task."""

    def __init__(self, *, cpu_seconds: float, memory_bytes: int,
                 grace: float = HARD_STOP_GRACE) -> None:
        self.cpu_seconds = cpu_seconds
        self.memory_bytes = memory_bytes
        self.grace = grace
        self._main: int | None = None
        self._lock = threading.Lock()
        self._started: float | None = None  # CPU time at the start of the running task
        self._signalled_at: float | None = None
        # The running task's cancel check, when it has one, and what became of it.
        self._stop_when: Callable[[], bool] | None = None
        self._polled_at = 0.0
        self._cancelled_at: float | None = None  # when the check first said stop
        self._cancel_raised = False
        self._in_body = False  # the main thread is inside a task's body (not its set-up)

    def install(self) -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        limit = self.memory_bytes if hard == resource.RLIM_INFINITY else min(
            self.memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
        signal.signal(STOP_SIGNAL, self._on_stop)
        # The kernel's SIGXCPU must kill: a Python handler (billiard installs one) would
        # wait for the very code that does not come back.
        signal.signal(signal.SIGXCPU, signal.SIG_DFL)
        self._main = threading.main_thread().ident
        threading.Thread(target=self._watch, name="task-guard", daemon=True).start()

    @contextlib.contextmanager
    def task(self, stop_when: Callable[[], bool] | None = None) -> Iterator[None]:
        """Run one task under the limits; an excess raises TaskLimitExceeded. With
        `stop_when`, the task raises TaskCancelled soon after it returns True (it is
        called from another thread, and may raise: that counts as "not now")."""
        with self._lock:
            self._started = time.process_time()
            self._signalled_at = None
            self._stop_when = stop_when
            self._polled_at = time.monotonic()
            self._cancelled_at = None
            self._cancel_raised = False
        _set_cpu_limit(math.ceil(self._started + self.cpu_seconds + self.grace))
        self._in_body = True
        try:
            yield
        except MemoryError:
            _release_memory()
            raise TaskLimitExceeded(MemoryLimitError(
                f"Converting this file needs more memory than this server allows one "
                f"conversion ({self.memory_bytes:,} bytes, CONVERTLY_TASK_MAX_MEMORY). Send "
                "a smaller file or ask the operator to raise the limit.",
                detail={"maxMemoryBytes": self.memory_bytes},
            )) from None
        except (TaskLimitExceeded, TaskCancelled):
            _release_memory()
            raise
        finally:
            self._in_body = False
            with self._lock:
                self._started = None
                self._stop_when = None
                self._cancelled_at = None
            _set_cpu_limit(None)

    def _over(self) -> ConversionTimeoutError:
        return ConversionTimeoutError(
            f"The conversion used more than {self.cpu_seconds:g} s of CPU time "
            "(CONVERTLY_TASK_CPU_SECONDS) and was stopped. Send a smaller or simpler file, or "
            "ask the operator to raise the limit.",
            detail={"cpuSeconds": self.cpu_seconds},
        )

    def _on_stop(self, _signum: int, _frame: FrameType | None) -> None:
        # No lock here: the main thread may hold it when the signal arrives. Nothing is
        # raised outside a task's body: not into the guard's own set-up or clean-up.
        if not self._in_body:
            return
        if self._cancelled_at is not None:
            if not self._cancel_raised:
                self._cancel_raised = True
                raise TaskCancelled()
            return  # unwinding already: let its clean-up run
        raise TaskLimitExceeded(self._over())

    def _watch(self) -> None:
        while True:
            time.sleep(WATCH_PERIOD)
            self._watch_cancel()
            with self._lock:
                if self._cancelled_at is not None:
                    continue  # a cancelled task is not stopped twice
                started, signalled_at = self._started, self._signalled_at
                if started is None:
                    continue
                used = time.process_time() - started
                now = time.monotonic()
                # Again and again: a handler that raises inside a C callback (cffi's, for
                # libvips' log messages) has its exception swallowed.
                if used <= self.cpu_seconds or (signalled_at is not None
                                                and now - signalled_at < RESIGNAL_PERIOD):
                    continue
                self._signalled_at = now
            if signalled_at is None:
                log.warning("task over its CPU limit (%.1f s); stopping it", used)
            assert self._main is not None
            signal.pthread_kill(self._main, STOP_SIGNAL)


    def _watch_cancel(self) -> None:
        """Ask the running task's `stop_when` every CANCEL_POLL seconds; once it said stop,
        signal the main thread (again while the signal has not landed, as for the CPU
        limit), and kill this process when the task is still running CANCEL_GRACE seconds
        later."""
        with self._lock:
            check, cancelled_at = self._stop_when, self._cancelled_at
            now = time.monotonic()
            if check is None or (cancelled_at is None and now - self._polled_at < CANCEL_POLL):
                return
            self._polled_at = now
        if cancelled_at is None:
            try:
                stop = check()
            except Exception as exc:  # state unreachable: ask again at the next poll
                log.debug("cancel check failed: %r", exc)
                return
            if stop:
                log.info("task cancelled; stopping it")
                self._signal_cancel(check, first=True)
        elif now - cancelled_at > CANCEL_GRACE:
            log.warning("cancelled task still running after %.0f s; killing its process",
                        CANCEL_GRACE)
            os.kill(os.getpid(), signal.SIGKILL)
        elif not self._cancel_raised:
            self._signal_cancel(check, first=False)

    def _signal_cancel(self, check: Callable[[], bool], *, first: bool) -> None:
        # Under the lock, so the signal goes to the task that was checked, not to the
        # next one (task() takes the lock to end a task).
        with self._lock:
            now = time.monotonic()
            if self._stop_when is not check:
                return  # that task ended meanwhile
            if first:
                self._cancelled_at = now
            elif now - (self._signalled_at or 0.0) < RESIGNAL_PERIOD:
                return
            self._signalled_at = now
            assert self._main is not None
            signal.pthread_kill(self._main, STOP_SIGNAL)


def _set_cpu_limit(seconds: int | None) -> None:
    """The kernel's CPU limit for this process: total CPU seconds, or none."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = hard if seconds is None or (hard != resource.RLIM_INFINITY and seconds > hard) \
        else seconds
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _release_memory() -> None:
    """Give the memory of an aborted task back to the system (glibc keeps freed arenas)."""
    gc.collect()
    libc = ctypes.util.find_library("c")
    if libc:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc).malloc_trim(0)
