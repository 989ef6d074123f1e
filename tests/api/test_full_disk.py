"""A full disk, for real: the data directory on a small tmpfs this test mounts and fills.
Uploads, folder and webhook creation answer 507 STORAGE_FULL (never a 400 blaming the body
or a 500), /healthz turns degraded, a job accepted before the disk filled waits instead of
failing, and everything works again by itself once space is freed. In distributed mode the
same error comes from Redis over its `maxmemory`."""

from __future__ import annotations

import contextlib
import errno
import logging
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from convertly.settings import Settings
from tests import images
from tests.api.library_support import put_signed, start_upload
from tests.api.support import (
    AppEnv,
    assert_error,
    create_job,
    deployed,
    get_job,
    post,
    running_app,
    wait_for_job,
)

TMPFS_BYTES = 24 * 1024 * 1024
MIN_FREE = 2 * 1024 * 1024
CHUNK = 64 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs mounted for this test (root only): a disk that fills in milliseconds."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(mountpoint)],
        capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (the full-disk test needs root and a kernel "
                    f"that allows it): {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        # Lazily: a pool process that is still stopping may hold a file open there.
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(path: Path, leave: int = 0) -> None:
    """Write zeros to `path` until its filesystem has at most `leave` bytes free."""
    with path.open("ab") as fh:
        while shutil.disk_usage(path.parent).free > leave:
            room = shutil.disk_usage(path.parent).free - leave
            try:
                fh.write(bytes(min(CHUNK, room)))
                fh.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break


def _folder(env: AppEnv, headers: dict[str, str], name: str) -> int:
    return env.client.post("/api/folders", headers=headers, json={"name": name}).status_code


def test_a_full_data_disk_answers_507_and_recovers_by_itself(
        small_disk: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(data_dir=small_disk / "data", workers=1, min_free_bytes=MIN_FREE,
                        webhook_allow_private=True)
    source = images.jpeg(1600, 1200, quality=40)  # ~110 KB in, ~3.3 MB of PNG out
    ballast, more_ballast = small_disk / "ballast", small_disk / "more-ballast"
    with running_app("embedded", settings) as env:
        tenant = env.new_tenant("full-disk")
        client = env.client
        assert client.get("/healthz").json()["checks"]["disk"] == "ok"
        direct = start_upload(client, tenant, "direct.jpg", len(source),
                              content_type="image/jpeg")["upload"]["signedUrl"]

        # Room for the upload and its records, not for the output: the job is accepted,
        # and its conversion then finds the disk full.
        fill(ballast, leave=1024 * 1024)
        job_id = create_job(client, tenant, [("photo.jpg", source)], format="png")
        fill(more_ballast)

        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="convertly"):
            upload = post(client, "/api/jobs", tenant, [("photo.jpg", source)], format="png")
        body = assert_error(upload, 507, "STORAGE_FULL", "out of storage space")
        assert int(upload.headers["retry-after"]) > 0
        assert set(body) == {"error", "code"}  # no path, no errno for the caller
        assert any(r.levelno == logging.ERROR and "upload spool" in r.getMessage()
                   and "is full" in r.getMessage() for r in caplog.records), caplog.text
        assert_error(post(client, "/api/convert", tenant, [("photo.jpg", source)],
                          format="webp"), 507, "STORAGE_FULL")
        # Small JSON writes go to SQLite, which reports SQLITE_FULL.
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="convertly"):
            folder = client.post("/api/folders", headers=tenant.headers, json={"name": "a"})
            hook = client.post("/api/webhooks", headers=tenant.headers,
                               json={"url": "http://127.0.0.1:9/hook"})
        assert_error(folder, 507, "STORAGE_FULL")
        assert_error(hook, 507, "STORAGE_FULL")
        assert_error(put_signed(client, direct, source, "image/jpeg"), 507, "STORAGE_FULL")
        assert any("job database" in r.getMessage() for r in caplog.records), caplog.text
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "degraded"
        assert "CONVERTLY_MIN_FREE_BYTES" in health.json()["checks"]["disk"]

        # The accepted job waits for space; it is not failed.
        job = get_job(client, tenant, job_id)
        assert job["status"] in {"pending", "processing"}, job
        assert job["results"][0]["status"] in {"pending", "processing"}, job

        ballast.unlink()
        more_ballast.unlink()
        freed = time.monotonic()
        assert client.get("/healthz").status_code == 200
        assert client.post("/api/folders", headers=tenant.headers,
                           json={"name": "a"}).status_code == 201
        assert client.post("/api/webhooks", headers=tenant.headers,
                           json={"url": "http://127.0.0.1:9/hook"}).status_code == 201
        assert put_signed(client, direct, source, "image/jpeg").status_code == 200
        again = wait_for_job(client, tenant, create_job(client, tenant,
                                                        [("photo.jpg", source)], format="png"))
        assert again["status"] == "completed", again
        # Tried again within its retry delay (StorageFullError.retry_after) of the space
        # coming back, not failed on the way.
        done = wait_for_job(client, tenant, job_id, timeout=60)
        assert done["status"] == "completed", done["results"][0]["error"]
        assert done["results"][0]["format"] == "png"
        print(f"job accepted before the disk filled completed {time.monotonic() - freed:.1f} s "
              "after space was freed")


@pytest.fixture
def distributed_env(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[AppEnv]:
    settings, cluster = deployed("distributed", Settings(data_dir=tmp_path / "data", workers=1),
                                 request)
    with running_app("distributed", settings, cluster) as env:
        yield env


def test_redis_over_its_maxmemory_answers_507_and_recovers(
        distributed_env: AppEnv, caplog: pytest.LogCaptureFixture) -> None:
    env = distributed_env
    client = env.client
    tenant = env.new_tenant("redis-full")
    source = images.jpeg(320, 240)
    state = redis.Redis.from_url(env.settings.redis_state_url)
    previous = state.config_get("maxmemory*")
    try:
        # Below what Redis already uses, with no eviction: every write is refused with OOM.
        state.config_set("maxmemory-policy", "noeviction")
        state.config_set("maxmemory", "1")
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="convertly"):
            upload = post(client, "/api/jobs", tenant, [("photo.jpg", source)], format="webp")
            folder = client.post("/api/folders", headers=tenant.headers, json={"name": "a"})
        assert_error(upload, 507, "STORAGE_FULL")
        assert_error(folder, 507, "STORAGE_FULL")
        assert any(r.levelno == logging.ERROR and "Redis memory" in r.getMessage()
                   for r in caplog.records), caplog.text
    finally:
        with contextlib.suppress(redis.RedisError):
            state.config_set("maxmemory", previous.get("maxmemory", "0"))
            state.config_set("maxmemory-policy", previous.get("maxmemory-policy", "noeviction"))
    job = wait_for_job(client, tenant, create_job(client, tenant, [("photo.jpg", source)],
                                                  format="webp"))
    assert job["status"] == "completed", job
    assert client.post("/api/folders", headers=tenant.headers,
                       json={"name": "a"}).status_code == 201

