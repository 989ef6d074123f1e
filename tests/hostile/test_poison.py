"""A file whose conversion kills its worker process every time (here: the test kills whichever
process is busy with it) is tried a bounded number of times, then fails alone with
WORKER_CRASHED; the job completes with its other files, in both modes. Before, distributed
mode requeued such a file for ever."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psutil
import pytest

from convertly.settings import Settings
from tests import images
from tests.api.support import MODES
from tests.hostile.harness import HostileServer, http_client

# librsvg draws fractal noise for ~10 s of CPU in one call: a file that is long at work.
SLOW_SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="2400" height="2400"><filter '
            b'id="t" x="0" y="0" width="100%" height="100%"><feTurbulence '
            b'baseFrequency="0.01" numOctaves="10"/></filter><rect width="2400" '
            b'height="2400" filter="url(#t)"/></svg>')
KILLS = {"embedded": 3, "distributed": 2}  # the executors' limits on deaths per file
WARM_UP = 2.5  # seconds a new conversion process may spend importing its libraries


@pytest.fixture(scope="module", params=MODES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[HostileServer]:
    mode: str = request.param
    settings = Settings(data_dir=tmp_path_factory.mktemp(f"poison-{mode}"), workers=1)
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


def _busy_worker(server: HostileServer) -> psutil.Process | None:
    """The worker process using a core right now, if any. A process started in the last
    WARM_UP seconds is passed over: it may be busy importing, not converting, and killing it
    would count against no file."""
    roots = server.roots()
    root = psutil.Process(roots.get("worker-main", roots["api"]))
    before: dict[int, float] = {}
    procs = []
    for proc in root.children():
        try:
            if (time.time() - proc.create_time() > WARM_UP
                    and "resource_tracker" not in " ".join(proc.cmdline())):
                before[proc.pid] = sum(proc.cpu_times()[:2])
                procs.append(proc)
        except psutil.Error:  # exiting, or a zombie not reaped yet
            continue
    time.sleep(0.3)
    for proc in procs:
        try:
            if sum(proc.cpu_times()[:2]) - before[proc.pid] > 0.2:
                return proc
        except psutil.Error:
            continue
    return None


def test_a_file_that_keeps_killing_its_worker_fails_alone(server: HostileServer) -> None:
    uploads = [("ok.png", images.png(64, 48)), ("slow.svg", SLOW_SVG)]
    kills = 0
    with http_client() as client:
        response = client.post(
            f"{server.base}/api/jobs", headers=server.headers,
            files=[("files", (n, d, "application/octet-stream")) for n, d in uploads],
            data={"format": "png"})
        assert response.status_code == 200, response.text
        job_id = response.json()["jobId"]
        deadline = time.monotonic() + 90
        while True:
            job = client.get(f"{server.base}/api/jobs/{job_id}", headers=server.headers).json()
            if job["status"] in ("completed", "failed"):
                break
            assert time.monotonic() < deadline, job
            busy = _busy_worker(server)
            if busy is not None and kills < KILLS[server.mode] + 2:
                busy.kill()
                kills += 1
    assert kills == KILLS[server.mode], (kills, job)
    assert job["status"] == "completed", job
    ok, slow = job["results"]
    assert ok["status"] == "completed", ok
    assert (slow["status"], slow["errorCode"]) == ("failed", "WORKER_CRASHED"), slow
    assert "died" in slow["error"] or "crashed" in slow["error"], slow
