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
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import logging
import math
import resource
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

from convertly.errors import ConversionTimeoutError, ConvertlyError, MemoryLimitError

log = logging.getLogger("convertly.worker")

HARD_STOP_GRACE = 10.0  # CPU seconds past the limit before the kernel kills the process
WATCH_PERIOD = 0.25
RESIGNAL_PERIOD = 0.5
STOP_SIGNAL = signal.SIGUSR2


class TaskLimitExceeded(BaseException):
    """A task went over a resource limit. A BaseException, so that no `except Exception`
    on the way (a library's, a converter's) takes it for an ordinary failure."""

    def __init__(self, error: ConvertlyError) -> None:
        super().__init__(error.message)
        self.error = error


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
    def task(self) -> Iterator[None]:
        """Run one task under the limits; an excess raises TaskLimitExceeded."""
        with self._lock:
            self._started = time.process_time()
            self._signalled_at = None
        _set_cpu_limit(math.ceil(self._started + self.cpu_seconds + self.grace))
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
        except TaskLimitExceeded:
            _release_memory()
            raise
        finally:
            with self._lock:
                self._started = None
            _set_cpu_limit(None)

    def _over(self) -> ConversionTimeoutError:
        return ConversionTimeoutError(
            f"The conversion used more than {self.cpu_seconds:g} s of CPU time "
            "(CONVERTLY_TASK_CPU_SECONDS) and was stopped. Send a smaller or simpler file, or "
            "ask the operator to raise the limit.",
            detail={"cpuSeconds": self.cpu_seconds},
        )

    def _on_stop(self, _signum: int, _frame: FrameType | None) -> None:
        # No lock here: the main thread may hold it when the signal arrives.
        if self._started is not None:
            raise TaskLimitExceeded(self._over())

    def _watch(self) -> None:
        while True:
            time.sleep(WATCH_PERIOD)
            with self._lock:
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
