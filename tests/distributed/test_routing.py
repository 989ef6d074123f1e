"""Distributed mode with workers for some queues only (image and archive here, as a host
without ffmpeg would run): what no worker could convert is answered at once, whatever
queue its target belongs to."""

from __future__ import annotations

import io
import json
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from convertly.app import create_app
from convertly.executors.celeryapp import queue_keys
from convertly.settings import Settings
from tests import images
from tests.api.support import AppEnv, assert_error, create_job, post, wait_for_job
from tests.cluster import Cluster


@contextmanager
def _image_only(cluster: Cluster, tmp_path: Path, **settings: Any) -> Iterator[AppEnv]:
    deployed = cluster.settings_for(Settings(data_dir=tmp_path / "api", workers=1, **settings))
    worker = cluster.start_worker(deployed, queues="image,archive", concurrency=1)
    try:
        app = create_app(deployed)
        with TestClient(app) as client:
            yield AppEnv(mode="distributed", app=app, client=client, settings=deployed)
    finally:
        worker.stop()


@pytest.fixture
def image_only(cluster: Cluster, tmp_path: Path) -> Iterator[AppEnv]:
    with _image_only(cluster, tmp_path) as env:
        yield env


def _wav(seconds: float = 0.5, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x01" * int(seconds * rate))
    return buf.getvalue()


def _queued(env: AppEnv, queue: str) -> int:
    client = redis.Redis.from_url(env.settings.broker_url)
    try:
        return sum(int(client.llen(key)) for key in queue_keys(queue))
    finally:
        client.close()


def test_a_sync_conversion_no_converter_has_is_refused_without_queueing(
        image_only: AppEnv) -> None:
    tenant = image_only.new_tenant()
    started = time.monotonic()
    response = post(image_only.client, "/api/convert", tenant,
                    [("photo.jpg", images.jpeg())], format="mp3")
    assert_error(response, 415, "UNSUPPORTED_CONVERSION", "photo.jpg", "mp3")
    assert time.monotonic() - started < 10
    assert _queued(image_only, "media") == 0
    # An empty file is refused the same way, before any worker sees it.
    response = post(image_only.client, "/api/convert", tenant, [("empty.png", b"")],
                    format="webp")
    assert response.status_code == 400, response.text
    # What the image worker can do still works.
    response = post(image_only.client, "/api/convert", tenant,
                    [("photo.jpg", images.jpeg())], format="webp")
    assert response.status_code == 200, response.text


def test_a_job_file_no_converter_has_fails_on_a_worker_of_its_source(
        image_only: AppEnv) -> None:
    tenant = image_only.new_tenant()
    job_id = create_job(image_only.client, tenant,
                        [("photo.jpg", images.jpeg()), ("other.jpg", images.jpeg(seed=2))],
                        formats=["mp3", "webp"])
    job = wait_for_job(image_only.client, tenant, job_id, timeout=60)
    assert job["completedFiles"] == 1 and job["failedFiles"] == 1, job
    assert job["results"][0]["errorCode"] == "UNSUPPORTED_CONVERSION"
    assert job["results"][1]["status"] == "completed"
    assert _queued(image_only, "media") == 0


def test_a_sync_conversion_no_worker_takes_in_time_answers_503_and_is_dropped(
        cluster: Cluster, tmp_path: Path) -> None:
    with _image_only(cluster, tmp_path, sync_queue_timeout=2) as env:
        tenant = env.new_tenant()
        started = time.monotonic()
        response = post(env.client, "/api/convert", tenant, [("tone.wav", _wav())],
                        format="mp3")
        waited = time.monotonic() - started
        assert_error(response, 503, "QUEUE_TIMEOUT", "No worker took this conversion")
        assert response.headers["retry-after"] == "30"
        assert 2 <= waited < 30
        assert _queued(env, "media") == 1  # still there: no media worker runs
        # A media worker that comes later drops it instead of converting it for nobody.
        media = cluster.start_worker(env.settings, queues="media", concurrency=1)
        try:
            deadline = time.monotonic() + 60
            while _queued(env, "media"):
                assert time.monotonic() < deadline, media.log_tail()
                time.sleep(0.1)
            response = post(env.client, "/api/convert", tenant, [("tone.wav", _wav())],
                            format="mp3")
            assert response.status_code == 200, response.text
            assert response.json()["files"][0]["mimeType"] == "audio/mpeg"
        finally:
            media.stop()
        assert "gave up waiting for a worker; not converted" in media.log_tail(20000)


def test_queued_messages_carry_the_time_limits_of_the_api_settings(
        cluster: Cluster, tmp_path: Path) -> None:
    """The worker applies the limits the API sized its waits by, whatever its own settings."""
    with _image_only(cluster, tmp_path) as env:
        tenant = env.new_tenant()
        create_job(env.client, tenant, [("tone.wav", _wav())], format="mp3")
        client = redis.Redis.from_url(env.settings.broker_url)
        try:
            raw = [m for key in queue_keys("media") for m in client.lrange(key, 0, -1)]
            assert len(raw) == 1, raw
            headers = json.loads(raw[0])["headers"]
            limits = [env.settings.task_time_limit, env.settings.task_soft_time_limit]
            assert headers["timelimit"] == limits, headers
            assert headers["ignore_result"] is True, headers
            for key in queue_keys("media"):
                client.delete(key)
        finally:
            client.close()
