"""POST /api/transfer (Convertly's `media.transfer`), in both modes: a URL from a real HTTP
server on loopback, S3 objects from the session's SeaweedFS with the request's own
credentials, back as the body or into storage (a queued job, or at once), and a ZIP unpacked
into folders under the archive guards. On the small-limits app, which may fetch from this
machine (CONVERTLY_FETCH_ALLOW_PRIVATE)."""

from __future__ import annotations

import dataclasses
import io
import time
import uuid
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from convertly import transfers
from convertly.state.records import TenantLimits
from convertly.watchdog import Watchdog
from tests import images
from tests.api.support import AppEnv, Tenant, assert_error, download, wait_for_job
from tests.cluster import Cluster
from tests.origin import loopback_origin

PHOTO = images.jpeg(64, 48)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("photos/trip/a.jpg", PHOTO)
        zf.writestr("readme.txt", b"hello")
    return buffer.getvalue()


ARCHIVE = _zip()


class _Origin(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = {"/photo.jpg": PHOTO, "/assets.zip": ARCHIVE}.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "image/jpeg" if self.path == "/photo.jpg"
                         else "application/zip")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    with loopback_origin(_Origin) as base:
        yield base


@pytest.fixture(scope="module")
def bucket(cluster: Cluster) -> dict[str, str]:
    """A bucket of the session's S3 server holding two objects under `in/`, and the
    cloudSource fields that reach it."""
    name = f"transfer-{uuid.uuid4().hex[:12]}"
    client = cluster.s3.client()
    client.make_bucket(name)
    client.put_object(name, "in/photo.jpg", io.BytesIO(PHOTO), len(PHOTO),
                      content_type="image/jpeg")
    client.put_object(name, "in/sub/readme.txt", io.BytesIO(b"hello"), 5)
    client.put_object(name, "other/skip.txt", io.BytesIO(b"no"), 2)
    return {"provider": "s3", "bucket": name, "endpoint": f"http://{cluster.s3.endpoint}",
            "accessKeyId": cluster.s3.access_key, "secretAccessKey": cluster.s3.secret_key,
            "region": "us-east-1"}


def _transfer(env: AppEnv, tenant: Tenant, **body: Any) -> Any:
    return env.client.post("/api/transfer", headers=tenant.headers, json=body)


def test_a_url_comes_back_as_the_body(limited_env: AppEnv, origin: str) -> None:
    tenant = limited_env.new_tenant()
    response = _transfer(limited_env, tenant, sourceUrl=f"{origin}/photo.jpg",
                         filename="mine.jpg")
    assert response.status_code == 200, response.text
    assert response.content == PHOTO
    assert response.headers["content-type"] == "image/jpeg"
    assert "mine.jpg" in response.headers["content-disposition"]


def test_a_url_into_storage_is_a_queued_job_whose_result_is_the_stored_file(
        limited_env: AppEnv, origin: str) -> None:
    tenant = limited_env.new_tenant()
    response = _transfer(limited_env, tenant, sourceUrl=f"{origin}/photo.jpg",
                         destination="convertly-storage")
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued["status"] == "pending" and queued["mode"] == "async"
    job = wait_for_job(limited_env.client, tenant, queued["jobId"])
    assert job["status"] == "completed" and job["jobType"] == "transfer", job
    result = job["results"][0]
    assert result["filename"] == "photo.jpg" and result["finalSize"] == len(PHOTO)
    assert download(limited_env.client, result["downloadUrl"]).content == PHOTO
    stored = limited_env.client.get(f"/api/files/{result['storedFileId']}",
                                    headers=tenant.headers)
    assert stored.status_code == 200 and stored.json()["file"]["mime_type"] == "image/jpeg"


def test_a_failed_queued_transfer_fails_its_job(limited_env: AppEnv, origin: str) -> None:
    tenant = limited_env.new_tenant()
    response = _transfer(limited_env, tenant, sourceUrl=f"{origin}/gone.jpg",
                         destination="convertly-storage")
    assert response.status_code == 202, response.text
    job = wait_for_job(limited_env.client, tenant, response.json()["jobId"])
    assert job["status"] == "failed"
    assert "HTTP 404" in job["results"][0]["error"], job


def test_s3_key_and_prefix_with_request_credentials(limited_env: AppEnv,
                                                    bucket: dict[str, str]) -> None:
    tenant = limited_env.new_tenant()
    one = _transfer(limited_env, tenant, cloudSource={**bucket, "key": "in/photo.jpg"})
    assert one.status_code == 200, one.text
    assert one.content == PHOTO

    many = _transfer(limited_env, tenant, destination="convertly-storage",
                     cloudSource={**bucket, "prefix": "in/"})
    assert many.status_code == 200, many.text
    names = sorted(f["filename"] for f in many.json()["files"])
    assert names == ["photo.jpg", "readme.txt"]
    shallow = _transfer(limited_env, tenant, destination="convertly-storage",
                        cloudSource={**bucket, "prefix": "in/", "recursive": False})
    assert [f["filename"] for f in shallow.json()["files"]] == ["photo.jpg"], shallow.text
    assert bucket["secretAccessKey"] not in many.text

    wrong = _transfer(limited_env, tenant, cloudSource={
        **bucket, "key": "in/photo.jpg", "secretAccessKey": "not-the-secret"})
    assert_error(wrong, 400, "INVALID_FIELD", "cloudSource", "S3 answered")
    assert "not-the-secret" not in wrong.text


def test_extract_unpacks_into_folders_under_the_limits(limited_env: AppEnv,
                                                       origin: str) -> None:
    tenant = limited_env.new_tenant()
    response = _transfer(limited_env, tenant, sourceUrl=f"{origin}/assets.zip",
                         destination="convertly-storage", extract=True,
                         extractOptions={"folderName": "client"})
    assert response.status_code == 200, response.text
    body = response.json()
    folders = {f["id"]: f for f in body["folders"]}
    assert body["folder"]["name"] == "client"

    def path_of(file: dict[str, Any]) -> str:
        parts = [file["filename"]]
        folder = folders.get(file["folder_id"])
        while folder is not None:
            parts.insert(0, folder["name"])
            folder = folders.get(folder["parent_id"])
        return "/".join(parts)

    assert sorted(path_of(f) for f in body["files"]) == [
        "client/photos/trip/a.jpg", "client/readme.txt"]
    photo = next(f for f in body["files"] if f["filename"] == "a.jpg")
    assert download(limited_env.client, photo["downloadUrl"]).content == PHOTO

    flat = _transfer(limited_env, tenant, sourceUrl=f"{origin}/assets.zip",
                     destination="convertly-storage", extract=True,
                     extractOptions={"preservePaths": False})
    assert flat.status_code == 200, flat.text
    assert len(flat.json()["folders"]) == 1  # named after the archive: "assets"
    assert flat.json()["folder"]["name"] == "assets"

    over = _transfer(limited_env, tenant, sourceUrl=f"{origin}/assets.zip",
                     destination="convertly-storage", extract=True,
                     extractOptions={"maxFiles": 1})
    assert_error(over, 413, "ARCHIVE_TOO_LARGE")
    too_big = _transfer(limited_env, tenant, sourceUrl=f"{origin}/assets.zip",
                        destination="convertly-storage", extract=True,
                        extractOptions={"maxEntryBytes": 10})
    assert_error(too_big, 413, "ARCHIVE_TOO_LARGE", "maxEntryBytes")


def test_unreachable_providers_and_bad_fields(limited_env: AppEnv) -> None:
    tenant = limited_env.new_tenant()
    for provider in ("google-drive", "dropbox"):
        response = _transfer(limited_env, tenant, cloudSource={"provider": provider,
                                                               "folderId": "x"})
        assert_error(response, 422, "PROVIDER_UNAVAILABLE", provider)
    assert_error(_transfer(limited_env, tenant), 400, "INVALID_FIELD", "sourceUrl")
    assert_error(_transfer(limited_env, tenant, sourceUrl="http://x.test/a", colour=1),
                 400, "INVALID_FIELD", "colour")
    assert_error(_transfer(limited_env, tenant, sourceUrl="http://x.test/a.zip",
                           extract=True), 400, "INVALID_FIELD", "extract")
    assert_error(_transfer(limited_env, tenant, destination="convertly-storage",
                           filename="one.jpg", cloudSource={"provider": "s3", "bucket": "b",
                                                            "prefix": "in/"}),
                 400, "INVALID_FIELD", "filename")


def test_a_queued_transfer_counts_against_the_tenants_jobs_in_flight(
        limited_env: AppEnv, origin: str) -> None:
    tenant = limited_env.new_tenant()
    svc = limited_env.services
    svc.keys.set_limits(tenant.tenant, TenantLimits(concurrent_jobs=1))
    waiting = transfers.new_job(svc, tenant.tenant, str(uuid.uuid4()), "first.jpg")
    try:
        refused = _transfer(limited_env, tenant, sourceUrl=f"{origin}/photo.jpg",
                            destination="convertly-storage")
        assert_error(refused, 429, "CONCURRENT_JOBS_LIMIT")
    finally:
        svc.jobs.delete(waiting)


def test_an_orphaned_queued_transfer_is_failed_by_the_watchdog(limited_env: AppEnv) -> None:
    """A transfer whose API process went away mid-download (its job unfinished long past
    CONVERTLY_FETCH_TIMEOUT) is failed, never queued to a worker."""
    tenant = limited_env.new_tenant()
    svc = limited_env.services
    job = transfers.new_job(svc, tenant.tenant, str(uuid.uuid4()), "lost.jpg")
    svc.jobs.delete(job)
    old = dataclasses.replace(job, created_at=time.time() - svc.settings.fetch_timeout - 3600)
    svc.jobs.create(old, None, 60)
    dog: Watchdog = limited_env.app.state.watchdog
    assert limited_env.client.portal is not None
    assert limited_env.client.portal.call(dog.look) == []
    failed = wait_for_job(limited_env.client, tenant, job.id)
    assert failed["status"] == "failed"
    assert failed["results"][0]["errorCode"] == "TRANSFER_INTERRUPTED", failed


def test_an_s3_endpoint_is_held_to_the_public_address_rule(app_env: AppEnv,
                                                            tenant: Tenant) -> None:
    """The shared app does not fetch from private addresses: neither a sourceUrl nor an S3
    endpoint on loopback is contacted."""
    response = app_env.client.post("/api/transfer", headers=tenant.headers, json={
        "cloudSource": {"provider": "s3", "bucket": "b", "key": "k",
                        "endpoint": "http://127.0.0.1:9", "accessKeyId": "AKIAEXAMPLE",
                        "secretAccessKey": "hidden-secret"}})
    body = assert_error(response, 400, "INVALID_FIELD", "cloudSource.endpoint",
                        "CONVERTLY_FETCH_ALLOW_PRIVATE")
    assert "hidden-secret" not in response.text, body
    url = app_env.client.post("/api/transfer", headers=tenant.headers,
                              json={"sourceUrl": "http://127.0.0.1:9/a.jpg"})
    assert_error(url, 400, "INVALID_FIELD", "sourceUrl", "CONVERTLY_FETCH_ALLOW_PRIVATE")
