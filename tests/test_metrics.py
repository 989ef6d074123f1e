"""Metrics across processes (convertly.metrics): what several processes of one host count
in one directory, any of them reports; an API process starting removes the files of
processes that no longer run, and keeps those of the ones that still do."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

COUNT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from convertly import metrics
    metrics.setup(Path(sys.argv[1]), clean=sys.argv[2] == "clean")
    for _ in range(int(sys.argv[3])):
        metrics.HTTP_REQUESTS.labels("GET", "/api/formats", "200").inc()
    sys.stdout.write(metrics.exposition().decode())
    sys.stdout.flush()
    if sys.argv[4] == "stay":
        sys.stdin.read()  # keeps running until the test closes its stdin
""")


def _requests(exposition: str) -> float:
    return sum(s.value for family in text_string_to_metric_families(exposition)
               for s in family.samples if s.name == "convertly_http_requests_total")


def _run(directory: Path, clean: bool, count: int) -> str:
    done = subprocess.run([sys.executable, "-c", COUNT, str(directory),
                           "clean" if clean else "keep", str(count), "exit"],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def test_processes_of_one_host_add_up_and_dead_ones_are_cleaned(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    # A process still running (another API process) with 5 ...
    running = subprocess.Popen([sys.executable, "-c", COUNT, str(directory), "keep", "5",
                                "stay"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    try:
        assert running.stdout is not None
        line = running.stdout.readline()
        while not line.startswith("convertly_http_requests_total"):
            assert line, "the running process wrote no count"
            line = running.stdout.readline()
        # ... one that ran and ended (a recycled pool process) with 3, and this one's 2:
        assert _requests(_run(directory, clean=False, count=3)) == 8
        assert _requests(_run(directory, clean=False, count=2)) == 10
        # An API process starting drops the files of the two that ended, not the running one.
        assert _requests(_run(directory, clean=True, count=1)) == 6
    finally:
        assert running.stdin is not None
        running.stdin.close()
        running.wait(30)
        assert running.stdout is not None
        running.stdout.close()


def test_a_full_disk_leaves_counts_in_memory_and_the_process_alive(tmp_path: Path) -> None:
    """prometheus-client writes through a memory map; into a sparse file on a full disk
    that is SIGBUS. The files are allocated up front, and when they cannot be, the process
    keeps its counts to itself and goes on."""
    from tests.api.test_full_disk import fill

    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs",
                              str(mountpoint)], capture_output=True, text=True, check=False)
    assert mounted.returncode == 0, f"cannot mount a tmpfs (needs root): {mounted.stderr}"
    try:
        (mountpoint / "metrics").mkdir()
        fill(mountpoint / "filler")
        done = subprocess.run([sys.executable, "-c", COUNT, str(mountpoint / "metrics"),
                               "keep", "100", "exit"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "are not shared through" in done.stderr
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)
