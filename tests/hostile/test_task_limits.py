"""Per-task memory and CPU limits, in both modes, through a real server: a file that needs
more memory than CONVERTLY_TASK_MAX_MEMORY or more CPU than CONVERTLY_TASK_CPU_SECONDS fails
on its own with an error naming the setting; the other files of the job convert, the worker
processes survive, and a runaway that holds on to the CPU gets its process killed."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from convertly.settings import Settings
from tests import images
from tests.api.support import MODES
from tests.hostile import samples
from tests.hostile.harness import HostileServer, http_client

MIB = 1024 * 1024
LIMITS = {"workers": 1, "max_pixels": 100_000_000, "task_max_memory": 256 * MIB,
          "task_cpu_seconds": 1}


def bmp_rle8(width: int, height: int) -> bytes:
    """A run-length-coded 8-bit BMP: ~500 KB for 8000x8000, ~450 MB to decode as RGB."""
    row = b"".join(bytes([min(255, width - x), 1]) for x in range(0, width, 255)) + b"\0\0"
    data = row * height + b"\0\1"
    palette = b"".join(bytes([i, 255 - i, 128, 0]) for i in range(256))
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(data), 2835, 2835,
                       256, 0)
    offset = 14 + 40 + len(palette)
    return (b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset) + info + palette
            + data)


def many_photos(count: int = 300) -> bytes:
    """A zip of pictures to encode as AVIF one by one: seconds of CPU from a few hundred KB,
    back in Python between each."""
    photo = images.png(640, 480, noise=0)
    return samples.zip_of({f"p{i}.jpg": photo for i in range(count)})


@pytest.fixture(scope="module", params=MODES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[HostileServer]:
    mode: str = request.param
    settings = Settings(data_dir=tmp_path_factory.mktemp(f"limits-{mode}"), **LIMITS)
    cluster = None
    if mode == "distributed":
        cluster = request.getfixturevalue("cluster")
        settings = cluster.settings_for(settings)
    running = HostileServer(mode, settings, cluster)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def _workers(server: HostileServer) -> set[int]:
    roots = server.roots()
    root = psutil.Process(roots.get("worker-main", roots["api"]))
    return {p.pid for p in root.children() if "resource_tracker" not in " ".join(p.cmdline())}


def test_a_file_over_a_task_limit_fails_alone(server: HostileServer) -> None:
    before = _workers(server)
    uploads = [("a.png", images.png(64, 48)), ("hog.bmp", bmp_rle8(8000, 8000)),
               ("photos.zip", many_photos()), ("b.png", images.png(48, 64))]
    with http_client() as client:
        response = client.post(
            f"{server.base}/api/jobs", headers=server.headers,
            files=[("files", (n, d, "application/octet-stream")) for n, d in uploads],
            data={"formats": json.dumps(["jpg", "jpg", "avif", "jpg"])})
        assert response.status_code == 200, response.text
        job_id = response.json()["jobId"]
        deadline = time.monotonic() + 60
        while True:
            job = client.get(f"{server.base}/api/jobs/{job_id}", headers=server.headers).json()
            if job["status"] in ("completed", "failed"):
                break
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
    results = job["results"]
    assert job["status"] == "completed"
    assert [r["status"] for r in results] == ["completed", "failed", "failed", "completed"]
    assert results[1]["errorCode"] == "MEMORY_LIMIT"
    assert "CONVERTLY_TASK_MAX_MEMORY" in results[1]["error"]
    assert results[2]["errorCode"] == "CONVERSION_TIMEOUT"
    assert "CONVERTLY_TASK_CPU_SECONDS" in results[2]["error"]
    assert _workers(server) == before, "a worker process was replaced"


def test_sync_conversion_over_the_memory_limit_is_413(server: HostileServer) -> None:
    with http_client() as client:
        response = client.post(
            f"{server.base}/api/convert", headers=server.headers,
            files=[("files", ("hog.bmp", bmp_rle8(8000, 8000), "image/bmp"))],
            data={"format": "png"})
        assert response.status_code == 413, response.text
        body = response.json()
        assert body["code"] == "MEMORY_LIMIT" and "CONVERTLY_TASK_MAX_MEMORY" in body["error"]
        after = client.post(
            f"{server.base}/api/convert", headers=server.headers,
            files=[("files", ("ok.png", images.png(64, 48), "image/png"))],
            data={"format": "webp"})
        assert after.status_code == 200, after.text


_RUNAWAY = textwrap.dedent("""
    import re, sys
    from convertly.executors.guard import TaskGuard, TaskLimitExceeded
    guard = TaskGuard(cpu_seconds=0.5, memory_bytes=1 << 30, grace=1)
    guard.install()
    try:
        with guard.task():
            if sys.argv[1] == "python":
                while True:
                    pass
            # Catastrophic backtracking: C code that holds the GIL, so no thread can act.
            re.match(r"(a+)+$", "a" * 64 + "b")
    except TaskLimitExceeded as exc:
        print(exc.error.code)
""")


@pytest.mark.parametrize(("kind", "outcome"), [("python", "CONVERSION_TIMEOUT"),
                                               ("native", "killed")])
def test_cpu_runaway_is_stopped_or_killed(tmp_path: Path, kind: str, outcome: str) -> None:
    """Code that returns to Python is stopped with an error; code that never does (holding
    the GIL) gets its process killed by the kernel, and the executor replaces it."""
    done = subprocess.run([sys.executable, "-c", _RUNAWAY, kind], capture_output=True,
                          text=True, timeout=30, cwd=Path(__file__).resolve().parents[2])
    if outcome == "killed":
        assert done.returncode == -24, (done.returncode, done.stderr[-2000:])  # SIGXCPU
    else:
        assert (done.returncode, done.stdout.strip()) == (0, outcome), done.stderr[-2000:]


_CANCELLED = textwrap.dedent("""
    import sys, time
    import pyvips
    from convertly.converters import process
    from convertly.executors.guard import TaskCancelled, TaskGuard
    guard = TaskGuard(cpu_seconds=300, memory_bytes=1 << 30)
    guard.install()
    asked_at = time.monotonic() + 0.5  # the job is cancelled half a second in
    try:
        with guard.task(stop_when=lambda: time.monotonic() > asked_at):
            if sys.argv[1] == "python":
                while True:
                    pass
            if sys.argv[1] == "program":
                process.run(["sh", "-c", "echo $$ > " + sys.argv[2] + "; exec sleep 120"],
                            timeout=300)
            # librsvg drawing one filter: native code that releases the GIL and does not
            # come back to Python for seconds.
            pyvips.Image.svgload_buffer(bytes.fromhex(sys.argv[3])).copy_memory()
    except TaskCancelled:
        with guard.task():  # the process goes on with its next task
            print("cancelled", flush=True)
""")


@pytest.mark.parametrize(("kind", "outcome"), [("python", "cancelled"),
                                               ("program", "cancelled"),
                                               ("native", "killed")])
def test_a_cancelled_task_is_stopped_or_killed(tmp_path: Path, kind: str, outcome: str) -> None:
    """A task whose job is cancelled stops where it is (killing the program it waits for)
    and its process takes the next task; code that never comes back to Python has its
    process killed (the executor replaces it)."""
    pid_file = tmp_path / "program.pid"
    done = subprocess.run([sys.executable, "-c", _CANCELLED, kind, str(pid_file),
                           images.slow_svg().hex()],
                          capture_output=True, text=True, timeout=50,
                          cwd=Path(__file__).resolve().parents[2])
    if outcome == "killed":
        assert done.returncode == -9, (done.returncode, done.stderr[-2000:])  # SIGKILL
        assert "killing its process" in done.stderr, done.stderr[-2000:]
    else:
        assert (done.returncode, done.stdout.strip()) == (0, outcome), done.stderr[-2000:]
    if kind == "program":
        assert not psutil.pid_exists(int(pid_file.read_text())), "the program still runs"
