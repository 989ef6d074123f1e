"""The one way converters run external programs (ffmpeg, ffprobe, unar, rar, ...).

Each run gets an argv list (never a shell), a wall-clock timeout, its own process group (so a
timeout or a cancelled task kills the program's children too), a closed stdin, and a bounded
tail of stderr for error messages. `on_line` receives stdout line by line while the program
runs (ffmpeg's `-progress pipe:1` output, for one).
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from convertly.errors import ConversionError, ConversionTimeoutError

STDERR_TAIL_LINES = 40


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str  # empty when on_line consumed it
    stderr_tail: str
    seconds: float


def which(program: str) -> str:
    """Absolute path of `program`, or a clear error naming the Debian package to install."""
    path = shutil.which(program)
    if path is None:
        raise ConversionError(
            f"This server cannot run `{program}`: it is not installed (run `make setup`, or "
            f"apt-get install the package that provides it)."
        )
    return path


def run(
    argv: Sequence[str | Path],
    *,
    timeout: float,
    cwd: Path | None = None,
    on_line: Callable[[str], None] | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> Completed:
    """Run `argv` to completion and return its outcome.

    Raises ConversionTimeoutError after `timeout` seconds (the whole process group is killed)
    and, with `check`, ConversionError when the exit status is not 0 (message: stderr's tail).
    """
    args = tuple(str(a) for a in argv)
    started = time.monotonic()
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=env,
        text=True,
        errors="replace",
    )
    # The program inherits its caller's per-task CPU limit (workers/guard.py); it has its own
    # timeout instead, and a long ffmpeg encode may use more CPU than any in-process work.
    with contextlib.suppress(OSError, ValueError):
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        resource.prlimit(proc.pid, resource.RLIMIT_CPU, (hard, hard))
    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    out_chunks: list[str] = []

    def drain_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            tail.append(line.rstrip("\n"))

    def drain_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if on_line is not None:
                on_line(line.rstrip("\n"))
            else:
                out_chunks.append(line)

    readers = [threading.Thread(target=drain_stderr, daemon=True),
               threading.Thread(target=drain_stdout, daemon=True)]
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise ConversionTimeoutError(
            f"{Path(args[0]).name} did not finish within {timeout:.0f} s and was stopped."
        ) from None
    except BaseException:
        # A task time limit or a cancelled worker: never leave the program running.
        _kill_group(proc)
        raise
    finally:
        for reader in readers:
            reader.join(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    done = Completed(
        argv=args,
        returncode=proc.returncode,
        stdout="".join(out_chunks),
        stderr_tail="\n".join(tail),
        seconds=time.monotonic() - started,
    )
    if check and done.returncode != 0:
        raise ConversionError(
            f"{Path(args[0]).name} failed (exit status {done.returncode}): "
            f"{_last_meaningful(tail) or 'no error output'}"
        )
    return done


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _last_meaningful(lines: deque[str]) -> str:
    for line in reversed(lines):
        if line.strip():
            return line.strip()[:500]
    return ""
