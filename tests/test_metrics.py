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
