"""Direct uploads: POST /api/uploads, a PUT of the bytes to the signed URL (the real SeaweedFS
server in distributed mode, this app's own route on local disk), POST /api/uploads/complete.
Every test runs in both modes, but the last, which streams over a real socket."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.testclient import TestClient

from convertly import retention
from convertly.settings import Settings
from convertly.signing import Grant, sign
from tests import images
from tests.api.library_support import (
    create_folder,
    fetch,
    listed_ids,
    put_signed,
    start_upload,
)
from tests.api.support import AppEnv, Tenant, assert_error, new_tenant, services_for
from tests.infra import free_ports, terminate


def _complete(client: TestClient, tenant: Tenant, body: dict[str, Any]) -> httpx2.Response:
    return client.post("/api/uploads/complete", headers=tenant.headers, json=body)


def test_direct_upload_round_trip(app_env: AppEnv, client: TestClient, tenant: Tenant) -> None:
    photo = images.png(90, 60)
    folder = create_folder(client, tenant, "Uploads")
    session = start_upload(client, tenant, "big photo.png", len(photo),
                           content_type="image/png", folder_id=folder["id"])
    upload = session["upload"]
    assert upload["method"] == "PUT"
    assert upload["expiresInSeconds"] == app_env.settings.upload_url_ttl
    if app_env.mode == "distributed":
        # A presigned URL straight to the S3 server.
        assert (upload["provider"], upload["bucket"]) == ("s3", app_env.settings.s3_bucket)
        assert upload["signedUrl"].startswith(f"http://{app_env.settings.s3_endpoint}/")
        assert "X-Amz-Signature=" in upload["signedUrl"]
    else:
        assert upload["provider"] == "local"
        assert upload["signedUrl"].startswith("http://testserver/api/uploads/")
    body = session["complete"]["body"]
    assert body == {"path": upload["path"], "filename": "big photo.png",
                    "contentType": "image/png", "sizeBytes": len(photo),
                    "folderId": folder["id"], "provider": upload["provider"],
                    "bucket": upload["bucket"]}
    assert session["complete"]["url"] == "http://testserver/api/uploads/complete"
    # Not a file until it is complete.
    assert listed_ids(client, tenant) == []
    assert_error(client.get(f"/api/files/{session['fileId']}", headers=tenant.headers),
                 404, "NOT_FOUND")
    assert_error(_complete(client, tenant, body), 409, "CONFLICT", "PUT the file")

    put = put_signed(client, upload["signedUrl"], photo, "image/png")
    assert put.status_code == 200, put.text
    response = _complete(client, tenant, body)
    assert response.status_code == 201, response.text
    done = response.json()
    assert done["idempotent"] is False
    record = done["file"]
    assert record["id"] == session["fileId"]
    assert (record["filename"], record["mime_type"], record["size_bytes"]) == (
        "big photo.png", "image/png", len(photo))
    assert (record["width"], record["height"], record["folder_id"]) == (90, 60, folder["id"])
    assert fetch(client, record["download_url"]).content == photo
    assert listed_ids(client, tenant, folderId=folder["id"]) == [record["id"]]

    # Completing again (a client retry) answers the same file.
    again = _complete(client, tenant, body)
    assert again.status_code == 200
    assert again.json()["idempotent"] is True
    assert again.json()["file"]["id"] == record["id"]
    # And the upload takes no more bytes (S3 cannot refuse; this server's route does).
    if app_env.mode == "embedded":
        assert_error(put_signed(client, upload["signedUrl"], photo), 409, "CONFLICT")


def test_upload_size_must_match(app_env: AppEnv, client: TestClient, tenant: Tenant) -> None:
    data = b"0123456789" * 100
    session = start_upload(client, tenant, "data.bin", len(data))
    url, body = session["upload"]["signedUrl"], session["complete"]["body"]
    short = put_signed(client, url, data[:-1])
    if app_env.mode == "embedded":
        # This server's route checks the size as the bytes arrive.
        assert_error(short, 400, "INVALID_REQUEST", "999 bytes", "1000")
        assert_error(put_signed(client, url, data + b"!"), 413, "FILE_TOO_LARGE", "1000")
    else:
        assert short.status_code == 200  # S3 takes it; completing checks it
        assert_error(_complete(client, tenant, body), 400, "INVALID_REQUEST", "999 bytes")
    assert_error(_complete(client, tenant, {**body, "sizeBytes": 5}), 400, "INVALID_FIELD",
                 "'sizeBytes'")
    assert put_signed(client, url, data).status_code == 200
    response = _complete(client, tenant, body)
    assert response.status_code == 201, response.text
    assert response.json()["file"]["mime_type"] == "application/octet-stream"
    assert fetch(client, response.json()["file"]["download_url"]).content == data


def test_bad_upload_requests(client: TestClient, tenant: Tenant,
                             other_tenant: Tenant) -> None:
    def create(body: Any) -> httpx2.Response:
        return client.post("/api/uploads", headers=tenant.headers, json=body)

    good = {"filename": "a.bin", "contentType": "application/octet-stream", "sizeBytes": 10}
    assert_error(create({**good, "filename": None}), 400, "INVALID_FIELD", "'filename'")
    assert_error(create({**good, "sizeBytes": "10"}), 400, "INVALID_FIELD", "'sizeBytes'")
    assert_error(create({**good, "sizeBytes": 0}), 400, "INVALID_FIELD", "'sizeBytes'")
    assert_error(create({**good, "contentType": "not a type"}), 400, "INVALID_FIELD",
                 "'contentType'")
    assert_error(create({**good, "resumable": "yes"}), 400, "INVALID_FIELD", "'resumable'")
    assert_error(create({**good, "folderId": "fld_nope"}), 404, "NOT_FOUND", "fld_nope")
    assert_error(create({**good, "extra": 1}), 400, "INVALID_FIELD", "'extra'")
    assert_error(client.post("/api/uploads", headers=tenant.headers, content=b"[]"),
                 400, "INVALID_REQUEST", "JSON object")
    assert_error(client.post("/api/uploads", json=good), 401, "UNAUTHORIZED")

    session = start_upload(client, tenant, "mine.bin", 10)
    body = session["complete"]["body"]
    assert_error(_complete(client, tenant, {**body, "path": "tenants/x/jobs/y"}), 400,
                 "INVALID_FIELD", "'path'")
    assert_error(_complete(client, tenant, {**body, "path": None}), 400, "INVALID_FIELD",
                 "'path'")
    assert_error(_complete(client, tenant, {**body, "provider": "gcs"}), 400, "INVALID_FIELD",
                 "'provider'")
    # Another tenant cannot complete (or even find) this upload.
    assert_error(_complete(client, other_tenant, body), 404, "NOT_FOUND")
    forged = body["path"].replace(session["fileId"], "file_" + "0" * 24)
    assert_error(_complete(client, tenant, {**body, "path": forged}), 404, "NOT_FOUND")


def test_upload_links_are_signed(app_env: AppEnv, client: TestClient, tenant: Tenant) -> None:
    session = start_upload(client, tenant, "x.bin", 4)
    url = session["upload"]["signedUrl"]
    if app_env.mode == "distributed":
        tampered = url.replace("x.bin", "y.bin", 1)
        assert httpx2.put(tampered, content=b"1234", timeout=30).status_code == 403
        return
    base, _, token = url.rpartition("/")
    payload, _, mac = token.partition(".")
    for bad in (f"{payload}.{mac[:-3]}", payload, "garbage", f"{payload[:-2]}AA.{mac}"):
        assert_error(client.put(f"{base}/{bad}", content=b"1234"), 403, "FORBIDDEN", "invalid")
    # A download link for the same object is no upload link.
    grant = Grant(key=session["upload"]["path"], tenant=tenant.tenant, filename="x.bin",
                  mime_type="application/octet-stream", expires=int(time.time()) + 60)
    download_token = sign(grant, app_env.services.secret)
    assert_error(client.put(f"{base}/{download_token}", content=b"1234"), 403, "FORBIDDEN")
    assert client.put(url, content=b"1234").status_code == 200


def test_limits_and_abandoned_uploads(limited_env: AppEnv) -> None:
    client, env = limited_env.client, limited_env
    tenant = env.new_tenant()
    limit = env.settings.max_file_bytes
    response = client.post("/api/uploads", headers=tenant.headers, json={
        "filename": "huge.bin", "sizeBytes": limit + 1})
    assert_error(response, 413, "FILE_TOO_LARGE", "CONVERTLY_MAX_FILE_BYTES")

    svc = env.services
    if env.mode == "distributed":
        # S3 cannot cap a presigned PUT: completing finds the object too large and deletes it.
        session = start_upload(client, tenant, "sneaky.bin", 100)
        put = put_signed(client, session["upload"]["signedUrl"], b"x" * (limit + 1))
        assert put.status_code == 200
        assert_error(_complete(client, tenant, session["complete"]["body"]), 413,
                     "FILE_TOO_LARGE", "deleted")
        assert not svc.storage.exists(session["upload"]["path"])
        assert svc.files.get(session["fileId"], tenant.tenant) is None

    # An upload never completed is deleted, bytes and record, once it expires.
    session = start_upload(client, tenant, "abandoned.bin", 5)
    assert put_signed(client, session["upload"]["signedUrl"], b"12345").status_code == 200
    path = session["upload"]["path"]
    assert svc.storage.exists(path)
    svc.files.update(session["fileId"], tenant.tenant, expires_at=time.time() - 1)
    assert retention.purge_expired(svc) >= 1
    assert not svc.storage.exists(path)
    assert_error(_complete(client, tenant, session["complete"]["body"]), 404, "NOT_FOUND",
                 "expired")


# --- over a real socket (embedded: this server's own upload route) ------------------------

SOCKET_BYTES = 48 * 1024 * 1024


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory in bytes (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, int]]:
    """`convertly serve` on a free port (embedded mode): (base URL, API key, pid)."""
    data_dir = tmp_path_factory.mktemp("upload-server")
    settings = Settings(data_dir=data_dir, workers=1, max_file_bytes=SOCKET_BYTES)
    key = new_tenant(services_for("embedded", settings)).key
    port = free_ports(1)[0]
    env = {**os.environ, **{k: v for k, v in settings.to_env().items() if v},
           "CONVERTLY_PORT": str(port)}
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "convertly", "serve"], env=env,
                               cwd=data_dir, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (data_dir / "server.log").read_text()
            try:
                if httpx2.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert time.monotonic() < deadline, (data_dir / "server.log").read_text()
            time.sleep(0.05)
        yield base, key, process.pid
    finally:
        terminate(process)
        log.close()


def _chunks(total: int, size: int = 1024 * 1024) -> Iterator[bytes]:
    block = bytes(range(256)) * (size // 256)
    sent = 0
    while sent < total:
        piece = block[: min(size, total - sent)]
        sent += len(piece)
        yield piece


def test_local_upload_streams_to_disk(server: tuple[str, str, int]) -> None:
    base, key, pid = server
    headers = {"Authorization": f"Bearer {key}"}
    with httpx2.Client(base_url=base, headers=headers, timeout=120) as http:
        session = http.post("/api/uploads", json={
            "filename": "big.bin", "sizeBytes": SOCKET_BYTES}).json()
        url = session["upload"]["signedUrl"]
        assert url.startswith(f"{base}/api/uploads/")
        before = _peak_rss(pid)
        # Chunked, with no Content-Length: the server cannot know the size up front.
        put = httpx2.put(url, content=_chunks(SOCKET_BYTES), timeout=120)
        assert put.status_code == 200, put.text
        grew = _peak_rss(pid) - before
        assert grew < SOCKET_BYTES // 4, f"peak memory grew {grew} bytes for the upload"
        done = http.post("/api/uploads/complete", json=session["complete"]["body"])
        assert done.status_code == 201, done.text
        record = done.json()["file"]
        assert record["size_bytes"] == SOCKET_BYTES
        with httpx2.stream("GET", record["download_url"], timeout=120) as response:
            assert response.status_code == 200
            received = b"".join(response.iter_bytes())
        assert received == b"".join(_chunks(SOCKET_BYTES))

        # Bytes beyond what the upload announced are refused while they stream in.
        small = http.post("/api/uploads", json={"filename": "s.bin", "sizeBytes": 1000}).json()
        refused = httpx2.put(small["upload"]["signedUrl"], content=_chunks(8 * 1024 * 1024),
                             timeout=120)
        assert refused.status_code == 413
        assert refused.json()["code"] == "FILE_TOO_LARGE"
