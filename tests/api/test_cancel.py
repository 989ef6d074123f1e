"""Cancelling a job that is converting, in both modes, with real worker processes: the files
not yet done stop (the running ones killed where they are, the queued ones dropped when a
worker takes them), the finished ones keep their outputs, the job ends failed and
`cancelled`, and the workers go on converting the next job normally."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from convertly.executors.base import Executor
from convertly.service import job_prefix
from convertly.settings import Settings
from tests import images
from tests.api.support import (
    MODES,
    AppEnv,
    assert_error,
    convert_ok,
    create_job,
    deployed,
    download,
    get_job,
    running_app,
    store_job,
    wait_for_job,
)

# Each takes about a minute of CPU in one librsvg call: were a cancel to leave them running,
# the job after it would find both conversion processes busy past NEXT_JOB_TIMEOUT.
SLOW = images.slow_svg(4800)
NEXT_JOB_TIMEOUT = 40.0


@pytest.fixture(scope="module", params=MODES)
def cancel_env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[AppEnv]:
    mode: str = request.param
    # Two conversion processes in both modes (the distributed worker's default concurrency).
    settings, cluster = deployed(
        mode, Settings(data_dir=tmp_path_factory.mktemp(f"cancel-{mode}"), workers=2), request)
    with running_app(mode, settings, cluster) as env:
        yield env


def _until(condition: str, check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not {condition} after {timeout} s"
        time.sleep(0.1)


def test_cancel_a_processing_job(cancel_env: AppEnv, tmp_path: Path) -> None:
    client, tenant = cancel_env.client, cancel_env.new_tenant()
    uploads = [("done.png", images.png(64, 48)), ("slow-1.svg", SLOW), ("slow-2.svg", SLOW),
               *((f"queued-{i}.png", images.png(48, 64, seed=i)) for i in range(3))]
    # Stored as POST /api/jobs stores it, then queued file by file in order (POST queues
    # each file as its source lands in storage: on S3, in no fixed order). The first file
    # converts next to the first slow one; the second slow one takes the first file's
    # process, and the rest wait behind them.
    job_id = store_job(cancel_env.services, tenant, uploads, tmp_path).id
    job_record = cancel_env.services.jobs.get(job_id)
    assert job_record is not None
    executor: Executor = cancel_env.app.state.executor
    for index in range(len(uploads)):
        executor.submit_file(job_record, index)
    executor.submitted(job_record)
    _until("first file done",
           lambda: get_job(client, tenant, job_id)["results"][0]["status"] == "completed")
    # A file a worker has taken shows progress at once; one still queued shows none.
    _until("both slow files started", lambda: all(
        r["progress"] > 0 for r in get_job(client, tenant, job_id)["results"][1:3]))
    queued = get_job(client, tenant, job_id)["results"][3:]
    assert [(r["status"], r["progress"]) for r in queued] == [("pending", 0)] * 3, queued
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(client.get, f"/api/jobs/{job_id}?wait=30",
                              headers=tenant.headers)
        _until("waiting", lambda: cancel_env.services.events.waiting(job_id) > 0)
        response = client.delete(f"/api/jobs/{job_id}", headers=tenant.headers)
        woken = waiting.result(timeout=60)

    assert response.status_code == 200, response.text
    job = response.json()
    assert (job["status"], job["cancelled"]) == ("failed", True), job
    assert job["startedAt"] and job["completedAt"] and job["errorMessage"]
    assert (job["completedFiles"], job["failedFiles"], job["progress"]) == (1, 5, 100), job
    finished, *stopped = job["results"]
    assert finished["status"] == "completed" and finished["downloadUrl"], finished
    for result in stopped:
        assert (result["status"], result["errorCode"], result["downloadUrl"]) == (
            "failed", "CANCELLED", None), result
    # A request waiting for the job is answered at once, as for any finished job.
    assert woken.status_code == 200 and woken.json()["status"] == "failed", woken.text
    assert images.decode(download(client, finished["downloadUrl"]).content).size == (64, 48)
    assert_error(client.delete(f"/api/jobs/{job_id}", headers=tenant.headers), 409,
                 "CONFLICT", "failed")

    # The workers convert the next job and sync conversions normally: the slow files were
    # stopped (not left running), and a process killed to stop one failed nothing else.
    after = create_job(client, tenant, [("a.png", images.png(40, 30)),
                                        ("b.png", images.png(30, 40))], format="webp")
    done = wait_for_job(client, tenant, after, timeout=NEXT_JOB_TIMEOUT)
    assert done["status"] == "completed", done
    assert [r["status"] for r in done["results"]] == ["completed", "completed"], done
    convert_ok(client, tenant, [("c.png", images.png(20, 20))], format="jpg")

    # The queued files were dropped, not converted later: nothing but the first file's
    # output was stored, and the cancelled job reads as it did.
    outputs = list(cancel_env.services.storage.list_prefix(
        f"{job_prefix(tenant.tenant, job_id)}/outputs/"))
    assert len(outputs) == 1 and outputs[0].endswith("/0-done.png"), outputs
    def unsigned(results: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{**r, "downloadUrl": bool(r["downloadUrl"])} for r in results]

    assert unsigned(get_job(client, tenant, job_id)["results"]) == unsigned(job["results"])
