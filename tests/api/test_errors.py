"""Error bodies and statuses: the error hierarchy, limits, bad files, a full queue, storage
that refuses the server's credentials."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from convertly import errors, jobs
from convertly.api.errors import STATUS, error_response
from convertly.app import create_app
from convertly.models import FileSpec, OutputFormat
from convertly.settings import Secret, Settings
from tests import images
from tests.api.support import (
    AppEnv,
    Tenant,
    assert_error,
    convert_ok,
    list_jobs,
    new_tenant,
    post,
    wait_for_job,
)
from tests.cluster import Cluster
from tests.media import lying_matroska


def _all_error_classes() -> list[type[errors.ConvertlyError]]:
    found: list[type[errors.ConvertlyError]] = []
    pending: list[type[errors.ConvertlyError]] = [errors.ConvertlyError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def _instance(cls: type[errors.ConvertlyError]) -> errors.ConvertlyError:
    if issubclass(cls, errors.InvalidFieldError):
        return cls("someField", "is wrong.", file_index=1)
    if issubclass(cls, errors.ArrayLengthError):
        return cls("formats", 3, 2)
    return cls("Something specific happened; do this next.")


def _expected_status(cls: type[errors.ConvertlyError]) -> int:
    nearest = next(c for c in cls.__mro__ if c in STATUS)
    return STATUS[nearest]


def _documented_tree() -> dict[str, tuple[int, str]]:
    """`ClassName -> (status, code)` as drawn in convertly/errors.py's docstring."""
    assert errors.__doc__ is not None
    rows = re.findall(r"(\w+Error)\s+(\d{3}) ([A-Z_]+)", errors.__doc__)
    return {name: (int(status), code) for name, status, code in rows}


ERROR_CLASSES = _all_error_classes()


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_class_renders_the_wire_shape(cls: type[errors.ConvertlyError]) -> None:
    exc = _instance(cls)
    response = error_response(exc)
    body = json.loads(bytes(response.body))

    assert response.status_code == _expected_status(cls)
    assert body["error"] == exc.message and body["error"]
    assert body["code"] == cls.code
    assert set(body) <= {"error", "code", "detail"}
    if isinstance(exc, errors.ServiceUnavailableError) and exc.transient:
        assert int(response.headers["retry-after"]) > 0
        assert "retry" in exc.default_message
    elif response.status_code == 503:
        # Not transient (a setting must change): no hint to retry.
        assert "retry-after" not in response.headers
        assert "retry" not in exc.default_message
    if response.status_code == 401:
        assert "bearer" in response.headers["www-authenticate"].lower()
    # Documented in the module's tree with the same status and code.
    assert _documented_tree()[cls.__name__] == (response.status_code, cls.code)
    # Errors cross process boundaries as (code, message): they come back as the same class.
    rebuilt = errors.from_code(cls.code, exc.message)
    assert type(rebuilt) is cls and rebuilt.message == exc.message


def test_the_tree_lists_every_class_and_codes_are_unique() -> None:
    assert set(_documented_tree()) == {c.__name__ for c in ERROR_CLASSES}
    codes = [c.code for c in ERROR_CLASSES]
    assert len(codes) == len(set(codes))
    assert set(errors.ERROR_CLASSES.values()) == set(ERROR_CLASSES)


def test_a_file_error_names_its_file_in_message_and_detail() -> None:
    exc = errors.CorruptFileError().for_file("holiday.jpg").for_file("other.jpg")
    body = json.loads(bytes(error_response(exc).body))
    assert body["error"].startswith("holiday.jpg: ")
    assert body["detail"] == {"filename": "holiday.jpg"}


def test_unknown_route_is_json_404(client: TestClient) -> None:
    assert_error(client.get("/api/nothing-here"), 404, "NOT_FOUND", "/api/nothing-here")


def test_wrong_method_is_json_405(client: TestClient) -> None:
    response = client.delete("/api/convert")
    assert_error(response, 405, "METHOD_NOT_ALLOWED", "DELETE")
    assert "POST" in response.headers["allow"]


# --- bad files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [("empty.jpg", b""), ("cut.jpg", images.truncated_jpeg())],
    ids=["empty", "truncated"],
)
def test_corrupt_file_is_400_naming_the_file(client: TestClient, tenant: Tenant, name: str,
                                             data: bytes) -> None:
    uploads = [("good.jpg", images.jpeg(80, 60)), (name, data)]
    response = post(client, "/api/convert", tenant, uploads, format="png")
    body = assert_error(response, 400, "CORRUPT_FILE", name)
    assert body["detail"]["filename"] == name
    assert "good.jpg" not in body["error"]


def test_text_file_is_415(client: TestClient, tenant: Tenant) -> None:
    response = post(client, "/api/convert", tenant, [("notes.jpg", b"hello, world\n" * 20)],
                    format="png")
    body = assert_error(response, 415, "UNSUPPORTED_MEDIA", "notes.jpg")
    assert body["detail"]["filename"] == "notes.jpg"


def test_unsupported_pair_is_415(client: TestClient, tenant: Tenant, png_bytes: bytes) -> None:
    response = post(client, "/api/convert", tenant, [("pic.png", png_bytes)], format="mp3")
    assert_error(response, 415, "UNSUPPORTED_CONVERSION", "pic.png", "mp3")


# --- limits -----------------------------------------------------------------------------


def _still_serving(env: AppEnv, tenant: Tenant) -> None:
    body = convert_ok(env.client, tenant, [("ok.jpg", images.jpeg(40, 30))], format="png")
    assert body["files"][0]["mimeType"] == "image/png"


def test_file_over_max_file_bytes_is_413(limited_env: AppEnv) -> None:
    tenant = limited_env.new_tenant()
    big = images.png(300, 300, noise=0.9)
    assert len(big) > limited_env.settings.max_file_bytes
    response = post(limited_env.client, "/api/convert", tenant,
                    [("small.jpg", images.jpeg(40, 30)), ("big.png", big)], format="webp")
    body = assert_error(response, 413, "FILE_TOO_LARGE", "big.png",
                        str(limited_env.settings.max_file_bytes))
    assert body["detail"]["filename"] == "big.png"
    _still_serving(limited_env, tenant)


def test_more_than_max_files_is_413(limited_env: AppEnv) -> None:
    tenant = limited_env.new_tenant()
    uploads = [(f"{i}.jpg", images.jpeg(40, 30, seed=i)) for i in range(4)]
    response = post(limited_env.client, "/api/convert", tenant, uploads, format="png")
    assert_error(response, 413, "TOO_MANY_FILES", "3")
    response = post(limited_env.client, "/api/jobs", tenant, uploads, format="png")
    assert_error(response, 413, "TOO_MANY_FILES")
    assert list_jobs(limited_env.client, tenant)["pagination"]["total"] == 0
    _still_serving(limited_env, tenant)


def test_body_over_max_request_bytes_is_413(limited_env: AppEnv) -> None:
    tenant = limited_env.new_tenant()
    # Every part is under its own limit; together they are over the request's.
    chunk = images.png(140, 140, noise=0.9)
    assert len(chunk) < limited_env.settings.max_file_bytes
    parts = [(f"{i}.png", chunk) for i in range(3)]
    filler = "x" * 60_000
    response = limited_env.client.post(
        "/api/convert", headers=tenant.headers,
        files=[("files", (n, d, "image/png")) for n, d in parts]
        + [(f"note{i}", (None, filler)) for i in range(8)],
        data={"format": "png"},
    )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE",
                 str(limited_env.settings.max_request_bytes))
    _still_serving(limited_env, tenant)


def test_image_over_max_pixels_is_413(limited_env: AppEnv) -> None:
    tenant = limited_env.new_tenant()
    # 600x400 = 240,000 pixels, over the limit of 200,000, in a small file.
    flat = images.encode(images.picture(600, 400, noise=0), "PNG")
    assert len(flat) < limited_env.settings.max_file_bytes
    response = post(limited_env.client, "/api/convert", tenant, [("wide.png", flat)],
                    format="jpg")
    body = assert_error(response, 413, "IMAGE_TOO_LARGE", "wide.png", "600x400")
    assert body["detail"] == {"pixels": 240_000, "maxPixels": 200_000, "filename": "wide.png"}
    _still_serving(limited_env, tenant)


def test_media_longer_than_its_header_says_is_413(limited_env: AppEnv) -> None:
    tenant = limited_env.new_tenant()
    lying = lying_matroska(600)  # its header says 1 s
    assert len(lying) < limited_env.settings.max_file_bytes
    response = post(limited_env.client, "/api/convert", tenant, [("long.mkv", lying)],
                    format="mp4")
    body = assert_error(response, 413, "MEDIA_TOO_LONG", "long.mkv", "more than 10 s")
    assert body["detail"] == {"maxSeconds": 10, "declaredSeconds": 1.0, "filename": "long.mkv"}
    deadline = time.monotonic() + 30
    while True:  # until the files of earlier tests have left the (one-file) queue
        response = post(limited_env.client, "/api/jobs", tenant, [("long.mkv", lying)],
                        format="webm")
        if response.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert response.status_code == 200, response.text
    job = wait_for_job(limited_env.client, tenant, response.json()["jobId"])
    assert job["status"] == "failed", job
    (result,) = job["results"]
    assert (result["status"], result["errorCode"], result["downloadUrl"]) == (
        "failed", "MEDIA_TOO_LONG", None), result
    _still_serving(limited_env, tenant)


def test_queue_full_is_503_with_retry_after(limited_env: AppEnv) -> None:
    tenant = limited_env.new_tenant()
    uploads = [(f"{i}.jpg", images.jpeg(40, 30, seed=i)) for i in range(3)]
    response = post(limited_env.client, "/api/jobs", tenant, uploads, format="png")
    body = assert_error(response, 503, "QUEUE_FULL", "retry")
    assert int(response.headers["retry-after"]) > 0
    assert body["code"] == "QUEUE_FULL"
    assert list_jobs(limited_env.client, tenant)["pagination"]["total"] == 0
    # Nothing was left behind in the spool.
    spool = Path(limited_env.settings.data_dir) / "tmp"
    assert not any(p.name.startswith("upload-") for p in spool.iterdir())


def test_a_replayed_job_is_not_refused_for_a_full_queue(limited_env: AppEnv,
                                                        tmp_path: Path) -> None:
    tenant = limited_env.new_tenant()
    svc = limited_env.services
    # Three files: more than the (one-file) queue ever takes, so a new job of these is
    # always refused. The job with this key was created earlier (by another process, say),
    # from exactly the request sent below.
    uploads = [(f"{i}.jpg", images.jpeg(40, 30, seed=i)) for i in range(3)]
    paths = []
    for i, (_, data) in enumerate(uploads):
        paths.append(tmp_path / f"upload-{i}")
        paths[-1].write_bytes(data)
    request = jobs.JobRequest(
        specs=tuple(FileSpec(index=i, filename=name, format=OutputFormat.PNG)
                    for i, (name, _) in enumerate(uploads)),
        paths=tuple(paths), idempotency_key="batch-7",
        digests=tuple(f"sha256:{hashlib.sha256(data).hexdigest()}" for _, data in uploads))
    sources = jobs.source_store(svc, tenant.tenant)
    try:
        earlier, created = jobs.store(svc, tenant.tenant, request, sources, base_url="")
    finally:
        sources.close()
    assert created
    headers = {"Idempotency-Key": "batch-7"}
    fresh = post(limited_env.client, "/api/jobs", tenant, uploads, format="png")
    assert_error(fresh, 503, "QUEUE_FULL")
    again = post(limited_env.client, "/api/jobs", tenant, uploads, format="png",
                 headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["jobId"] == earlier.id
    assert again.headers["idempotent-replayed"] == "true"
    cancelled = limited_env.client.delete(f"/api/jobs/{earlier.id}", headers=tenant.headers)
    assert cancelled.status_code == 200, cancelled.text


def test_storage_that_refuses_the_credentials_is_503_without_retry_hint(
    cluster: Cluster, tmp_path: Path
) -> None:
    s3 = cluster.s3
    settings = Settings(data_dir=tmp_path / "data", workers=1, s3_endpoint=s3.endpoint,
                        s3_access_key=Secret(s3.access_key), s3_secret_key=Secret("wrong"),
                        s3_bucket="refused")
    app = create_app(settings)
    with TestClient(app) as client:
        tenant = new_tenant(app.state.services)
        response = post(client, "/api/jobs", tenant, [("photo.jpg", images.jpeg(40, 30))],
                        format="png")
        body = assert_error(response, 503, "STORAGE_MISCONFIGURED", "credentials")
        assert "retry" not in body["error"]
        assert "retry-after" not in response.headers
        assert list_jobs(client, tenant)["pagination"]["total"] == 0

        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["checks"]["storage"] == body["error"]
