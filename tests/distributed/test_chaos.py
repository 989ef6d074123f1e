"""Distributed mode under faults, on real processes: a worker process SIGKILLed mid-file,
Redis restarted (AOF), the S3 service stopped and started again. Accepted work completes;
requests in between get 503 with a retry hint; nothing needs a restart."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from convertly.executors.celery import WATCH_INTERVAL, CeleryExecutor
from convertly.models import FileResult, FileSpec, FileStatus, Job, JobStatus, JobType
from convertly.settings import Settings
from tests import images
from tests.api.support import (
    AppEnv,
    assert_error,
    create_job,
    multipart,
    output_bytes,
    post,
    running_app,
    wait_for_job,
)
from tests.api.test_streams import wait_ready
from tests.cluster import Cluster
from tests.streams.source import source_video


@pytest.fixture(scope="module")
def chaos_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A cluster of its own: these tests stop and restart its servers."""
    cluster = Cluster(tmp_path_factory.mktemp("chaos"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def env(chaos_cluster: Cluster, tmp_path: Path) -> Iterator[AppEnv]:
    settings = chaos_cluster.settings_for(Settings(data_dir=tmp_path / "api", workers=1))
    with running_app("distributed", settings, chaos_cluster) as app_env:
        yield app_env


def _wait(predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def _slow_uploads(count: int) -> list[tuple[str, bytes]]:
    # 1600×1200 to AVIF takes a few hundred milliseconds: long enough to kill mid-file.
    return [(f"{i}.jpg", images.jpeg(1600, 1200, seed=i)) for i in range(count)]


def test_a_worker_process_killed_mid_file_is_redelivered(env: AppEnv,
                                                         chaos_cluster: Cluster) -> None:
    worker = chaos_cluster.workers[-1]
    tenant = env.new_tenant()
    job_id = create_job(env.client, tenant, _slow_uploads(6), format="avif")

    # Kill a pool process while it converts (the job has started and is not done).
    def started() -> bool:
        job = env.client.get(f"/api/jobs/{job_id}", headers=tenant.headers).json()
        return bool(job["status"] == "processing")

    _wait(started)
    victims = worker.children()
    assert victims, worker.log_tail()
    for pid in victims:
        os.kill(pid, signal.SIGKILL)

    job = wait_for_job(env.client, tenant, job_id, timeout=120)
    assert job["status"] == "completed", job
    assert job["completedFiles"] == 6, job
    assert "WorkerLostError" in worker.log_tail(100_000) or "signal 9" in \
        worker.log_tail(100_000)


def test_accepted_jobs_complete_across_a_redis_restart(env: AppEnv,
                                                       chaos_cluster: Cluster) -> None:
    tenant = env.new_tenant()
    job_id = create_job(env.client, tenant, _slow_uploads(4), format="webp")
    chaos_cluster.redis.stop()

    # While Redis is down the API answers 503 with a retry hint, not 500.
    response = post(env.client, "/api/jobs", tenant, [("x.jpg", images.jpeg(64, 48))],
                    format="png")
    assert_error(response, 503, "STATE_UNAVAILABLE")
    assert response.headers["retry-after"]
    # Health says which part is down, in its own shape.
    health = env.client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["status"] == "degraded"
    assert "unavailable" in health.json()["checks"]["queue"]

    chaos_cluster.redis.start()  # same port, same AOF
    job = wait_for_job(env.client, tenant, job_id, timeout=120)
    assert job["status"] == "completed", job
    assert job["completedFiles"] == 4
    # And new work goes through without restarting anything.
    again = wait_for_job(env.client, tenant, create_job(
        env.client, tenant, [("y.png", images.png(80, 60))], format="jpg"))
    assert again["status"] == "completed", again


def test_s3_outage_gives_503_and_the_service_recovers(env: AppEnv,
                                                      chaos_cluster: Cluster) -> None:
    tenant = env.new_tenant()
    chaos_cluster.s3.stop()
    try:
        response = post(env.client, "/api/convert", tenant, [("a.jpg", images.jpeg(64, 48))],
                        format="png")
        assert_error(response, 503, "STORAGE_UNAVAILABLE")
        assert response.headers["retry-after"]
        health = env.client.get("/healthz")
        assert health.status_code == 503
    finally:
        chaos_cluster.s3.start()
    assert env.client.get("/healthz").status_code == 200
    response = post(env.client, "/api/convert", tenant, [("a.jpg", images.jpeg(64, 48))],
                    format="png")
    assert response.status_code == 200, response.text
    output = output_bytes(env.client, response.json()["files"][0])
    assert images.decode(output).size == (64, 48)


def test_a_stalled_s3_server_is_reported_within_seconds(env: AppEnv,
                                                        chaos_cluster: Cluster) -> None:
    # Stopped, not killed: connections are still accepted, and nothing answers them.
    pid = chaos_cluster.s3.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        health = env.client.get("/healthz")
        waited = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert health.status_code == 503
    assert health.json()["status"] == "degraded"
    assert health.json()["checks"]["storage"] != "ok"
    # The probe's own timeout, not the data calls' 60 s read timeout (asked twice, before).
    assert waited < 20
    assert env.client.get("/healthz").status_code == 200


def test_the_watchdog_finalises_a_job_whose_finalisation_was_lost(env: AppEnv) -> None:
    # Every file has its result but no finalisation was ever queued: what a broker outage
    # between the last file and its finalisation leaves behind.
    tenant = env.new_tenant()
    specs = (FileSpec(index=0, filename="a.png"), FileSpec(index=1, filename="b.png"))
    job, _ = env.services.jobs.create(Job(
        id=str(uuid.uuid4()), tenant=tenant.tenant, job_type=JobType.CONVERT,
        status=JobStatus.PROCESSING, specs=specs,
        results=tuple(FileResult(index=s.index, filename=s.filename,
                                 status=FileStatus.PENDING) for s in specs),
        created_at=time.time(), extra={"queued": True}), None, 60)
    for spec in specs:
        env.services.jobs.record_file(FileResult(
            index=spec.index, filename=spec.filename, status=FileStatus.FAILED,
            error="lost", error_code="CONVERSION_FAILED"), job.id)
    executor: CeleryExecutor = env.app.state.executor

    now = time.monotonic()
    assert job.id not in executor.sweep(now)  # first sight: its finalisation may be on the way
    assert job.id in executor.sweep(now + WATCH_INTERVAL)
    assert job.id not in executor.sweep(now + 2 * WATCH_INTERVAL)  # once per time limit

    finished = wait_for_job(env.client, tenant, job.id)
    assert finished["status"] == "failed", finished
    assert finished["errorMessage"] == "All 2 files failed; see each result's error."


def test_a_video_stream_survives_its_encoder_killed(env: AppEnv, chaos_cluster: Cluster,
                                                    tmp_path: Path) -> None:
    worker = chaos_cluster.workers[-1]
    tenant = env.new_tenant()
    video = source_video(tmp_path / "long.mp4", seconds=8, size="640x360", audio=False)
    stored = env.client.post("/api/files", headers=tenant.headers,
                             files=multipart([("long.mp4", video.read_bytes())], "file"))
    assert stored.status_code == 201, stored.text
    created = env.client.post("/api/video/streams", headers=tenant.headers, json={
        "sourceFileId": stored.json()["file"]["id"], "profile": "custom",
        "renditions": [{"height": 360, "bitrate": 800}], "segmentDuration": 2})
    assert created.status_code == 201, created.text
    stream_id = created.json()["stream"]["id"]

    def encoding() -> bool:
        stream = env.client.get(f"/api/video/streams/{stream_id}",
                                headers=tenant.headers).json()["stream"]
        return bool(stream["progress"] > 0)

    _wait(encoding)
    victims = worker.children()
    assert victims, worker.log_tail()
    for pid in victims:
        os.kill(pid, signal.SIGKILL)

    stream = wait_ready(env.client, tenant, stream_id, timeout=120)
    assert stream["status"] == "ready", stream
    assert [(r["height"], r["segmentCount"]) for r in stream["renditions"]] == [(360, 4)]
    assert "WorkerLostError" in worker.log_tail(100_000) or "signal 9" in \
        worker.log_tail(100_000)
