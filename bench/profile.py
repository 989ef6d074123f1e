"""Where the time goes: py-spy samples of the API process and its conversion processes,
sorted into the phases a job's file goes through."""

from __future__ import annotations

import collections
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from bench import peers

# A sample belongs to the first phase (top-down) with a marker somewhere in its stack.
PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("finalisation", ("finalize_job (convertly/pipeline.py",)),
    ("conversion", ("convert_path (convertly/pipeline.py",)),
    ("job state (SQLite)", ("start_file (convertly/state/sqlite/jobs.py", "record_file (convertly",
                            "record_files (convertly", "FileStore.add (convertly",
                            "FileStore.add_many (convertly", "awaits_finalize (convertly")),
    ("storage (source in, output out)", ("LocalStorage.", "scratch_dir (convertly")),
    ("conversion process start (imports)", ("init_worker (convertly/executors/pool.py",
                                            "_find_and_load (")),
    ("upload/parse", ("parse_multipart (convertly/api/forms.py",)),
    ("job creation", ("store (convertly/jobs.py", "build_specs (convertly")),
    ("queueing (executor, pool IPC)", ("InProcessExecutor.", "concurrent/futures/process.py",
                                       "multiprocessing/queues.py",
                                       "multiprocessing/connection.py",
                                       "run_file (convertly/executors/pool.py",
                                       "run_files (convertly/executors/pool.py")),
    ("status polling", ("get_job (convertly/api/endpoints.py",)),
)
# Leaf frames of a thread that waits rather than works (py-spy's own idle test misses
# threads blocked in C).
IDLE_LEAVES = ("select (selectors.py", "wait (threading.py", "_worker (concurrent/futures/thread",
               "Queue.get (multiprocessing/queues.py", "_recv_bytes (multiprocessing",
               "_recv (multiprocessing", "SemLock.__enter__", "Runner.run (asyncio",
               "wait (multiprocessing/connection.py", "_poll (multiprocessing/connection.py")


def classify(lines: Iterable[str]) -> dict[str, int]:
    """Samples per phase from py-spy's raw (collapsed) output; "other" for the rest."""
    counts: collections.Counter[str] = collections.Counter()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if any(leaf in frames[-1] for leaf in IDLE_LEAVES):
            continue
        for phase, markers in PHASES:
            if any(m in f for f in frames for m in markers):
                counts[phase] += int(count)
                break
        else:
            counts["other (HTTP server, event loop)"] += int(count)
    return dict(counts)


class Recorder:
    """py-spy sampling `pid` and its child processes until stopped; `lines()` then gives
    its raw (collapsed-stack) output."""

    def __init__(self, pid: int, out: Path, rate: int = 250) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [str(peers.py_spy()), "record", "--subprocesses", "--pid", str(pid), "--rate",
             str(rate), "--format", "raw", "--output", str(out), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached before the work starts

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        self.proc.wait(60)

    def lines(self) -> list[str]:
        return self.out.read_text().splitlines() if self.out.exists() else []
