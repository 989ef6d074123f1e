"""POST/GET/DELETE /api/jobs: async jobs, archives, partial failures, idempotency, paging,
cancelling."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import tarfile
import uuid
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import py7zr
import pytest
from starlette.testclient import TestClient

from convertly import errors, jobs, pipeline
from convertly.models import FileSpec, Job, OutputFormat
from tests import images
from tests.api.support import (
    AppEnv,
    Tenant,
    assert_error,
    create_job,
    download,
    get_job,
    list_jobs,
    post,
    store_job,
    wait_for_job,
)

JOB_KEYS = {"jobId", "jobType", "status", "totalFiles", "completedFiles", "failedFiles",
            "progress", "errorMessage", "results", "archive", "createdAt", "completedAt"}
RESULT_KEYS = {"index", "filename", "format", "originalSize", "finalSize", "mimeType",
               "downloadUrl", "storedFileId", "error"}


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_create_answers_pending_and_the_job_completes(client: TestClient, tenant: Tenant,
                                                      jpeg_bytes: bytes) -> None:
    response = post(client, "/api/jobs", tenant, [("photo.jpg", jpeg_bytes)], format="webp",
                    resize="width", resizeWidth=160)
    assert response.status_code == 200, response.text
    created = response.json()
    assert created.keys() == {"jobId", "status"}
    assert created["status"] == "pending"
    assert uuid.UUID(created["jobId"])

    job = wait_for_job(client, tenant, created["jobId"])

    assert job.keys() >= JOB_KEYS
    assert job["jobId"] == created["jobId"]
    assert job["jobType"] == "convert"
    assert job["status"] == "completed"
    assert (job["totalFiles"], job["completedFiles"], job["failedFiles"]) == (1, 1, 0)
    assert job["progress"] == 100
    assert job["errorMessage"] is None
    assert job["archive"] is None
    assert _when(job["createdAt"]) <= _when(job["completedAt"])
    [result] = job["results"]
    assert result.keys() >= RESULT_KEYS
    assert result["index"] == 0
    assert result["filename"] == "photo.jpg"
    assert result["format"] == "webp"
    assert result["originalSize"] == len(jpeg_bytes)
    assert result["mimeType"] == "image/webp"
    assert result["storedFileId"].startswith("file_")
    assert result["error"] is None
    assert result["downloadUrl"].startswith("http://testserver/api/download/")
    data = download(client, result["downloadUrl"]).content
    assert len(data) == result["finalSize"]
    out = images.decode(data)
    assert (out.format, out.size) == ("WEBP", (160, 120))


def test_three_files_with_formats_and_an_archive(client: TestClient, tenant: Tenant) -> None:
    uploads = [
        ("a.jpg", images.jpeg(300, 200, seed=1)),
        ("b.png", images.png(200, 300, seed=2)),
        ("c.jpg", images.jpeg(250, 250, seed=3)),
    ]
    job_id = create_job(client, tenant, uploads, formats=["png", "webp", "avif"],
                        createArchive=True)
    job = wait_for_job(client, tenant, job_id)

    assert job["status"] == "completed", job
    assert [r["format"] for r in job["results"]] == ["png", "webp", "avif"]
    archive = job["archive"]
    assert archive["filename"].endswith(".zip")
    data = download(client, archive["downloadUrl"]).content
    assert len(data) == archive["size"]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == ["a.png", "b.webp", "c.avif"]
        members = {name: images.decode(zf.read(name)) for name in zf.namelist()}
    assert (members["a.png"].format, members["a.png"].size) == ("PNG", (300, 200))
    assert (members["b.webp"].format, members["b.webp"].size) == ("WEBP", (200, 300))
    assert (members["c.avif"].format, members["c.avif"].size) == ("AVIF", (250, 250))


@pytest.mark.parametrize("names", [["files[0]", "files[1]"], ["files[]", "files[]"]])
def test_bracketed_file_fields_are_files_in_the_order_sent(client: TestClient, tenant: Tenant,
                                                           names: list[str]) -> None:
    """PHP's cURL sends a list of files as files[0], files[1]; browser forms as files[]."""
    parts = [(name, (filename, data, "image/jpeg")) for name, (filename, data) in zip(
        names, [("a.jpg", images.jpeg(120, 80, seed=1)), ("b.jpg", images.jpeg(60, 90, seed=2))],
        strict=True)]
    response = client.post("/api/jobs", headers=tenant.headers, files=parts,
                           data={"formats": '["png", "webp"]', "saveToStorage": "true"})
    assert response.status_code == 200, response.text
    job = wait_for_job(client, tenant, response.json()["jobId"])

    assert job["status"] == "completed", job
    assert [(r["filename"], r["format"]) for r in job["results"]] == [("a.jpg", "png"),
                                                                       ("b.jpg", "webp")]
    sizes = [images.decode(download(client, r["downloadUrl"]).content).size
             for r in job["results"]]
    assert sizes == [(120, 80), (60, 90)]


def test_a_file_under_another_name_is_refused(client: TestClient, tenant: Tenant) -> None:
    response = client.post("/api/jobs", headers=tenant.headers, data={"format": "png"},
                           files=[("photos[0]", ("a.jpg", images.jpeg(40, 40), "image/jpeg"))])
    assert_error(response, 400, "INVALID_FIELD")
    assert "photos[0]" in response.json()["error"]


def test_archive_names_never_collide(client: TestClient, tenant: Tenant) -> None:
    uploads = [("same.jpg", images.jpeg(64, 48)), ("same.png", images.png(48, 64))]
    job_id = create_job(client, tenant, uploads, format="png", createArchive=True)
    job = wait_for_job(client, tenant, job_id)
    with zipfile.ZipFile(io.BytesIO(download(client, job["archive"]["downloadUrl"]).content)) \
            as zf:
        assert sorted(zf.namelist()) == ["same (2).png", "same.png"]
        assert images.decode(zf.read("same (2).png")).size == (48, 64)


def _converted_not_finalised(app_env: AppEnv, tenant: Tenant, tmp_path: Path,
                             names: list[str]) -> dict[str, Any]:
    """A job with an archive whose files were converted (as a worker converts them) but
    which is not finalised yet: the moment between its last file and its bundle."""
    uploads = [(name, images.png(40 + i, 30, seed=i)) for i, name in enumerate(names)]
    job = store_job(app_env.services, tenant, uploads, tmp_path, create_archive=True)
    lasts = [pipeline.run_file(app_env.services, job.id, i) for i in range(len(names))]
    assert lasts == [False] * (len(names) - 1) + [True]
    view = get_job(app_env.client, tenant, job.id)
    assert view["status"] == "processing" and view["completedFiles"] == len(names), view
    return view


def _delete_output(client: TestClient, tenant: Tenant, result: dict[str, Any]) -> None:
    response = client.delete(f"/api/files/{result['storedFileId']}", headers=tenant.headers)
    assert response.status_code in (200, 204), response.text


def test_outputs_deleted_before_the_bundle_are_noted_and_left_out(
        app_env: AppEnv, client: TestClient, tenant: Tenant, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    view = _converted_not_finalised(app_env, tenant, tmp_path, ["a.png", "b.png", "c.png"])
    _delete_output(client, tenant, view["results"][1])

    pipeline.finalize_job(app_env.services, view["jobId"])

    job = get_job(client, tenant, view["jobId"])
    assert (job["status"], job["errorMessage"]) == ("completed", None), job
    assert (job["completedFiles"], job["failedFiles"]) == (2, 1), job
    first, gone, last = job["results"]
    assert first["status"] == last["status"] == "completed"
    assert (gone["status"], gone["errorCode"], gone["downloadUrl"]) == (
        "failed", "OUTPUT_MISSING", None), gone
    assert "archive" in gone["error"], gone
    with zipfile.ZipFile(io.BytesIO(download(client, job["archive"]["downloadUrl"]).content)) \
            as zf:
        assert sorted(zf.namelist()) == ["a.png", "c.png"]
    assert images.decode(download(client, last["downloadUrl"]).content).size == (42, 30)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_job_whose_outputs_were_all_deleted_before_the_bundle_fails(
        app_env: AppEnv, client: TestClient, tenant: Tenant, tmp_path: Path) -> None:
    view = _converted_not_finalised(app_env, tenant, tmp_path, ["a.png", "b.png"])
    for result in view["results"]:
        _delete_output(client, tenant, result)

    pipeline.finalize_job(app_env.services, view["jobId"])

    job = get_job(client, tenant, view["jobId"])
    assert (job["status"], job["failedFiles"], job["archive"]["downloadUrl"]) == (
        "failed", 2, None), job
    assert job["errorMessage"] == "All 2 files failed; see each result's error."
    assert {r["errorCode"] for r in job["results"]} == {"OUTPUT_MISSING"}


@pytest.mark.parametrize(("archive_format", "suffix"), [("tar", ".tar"), ("tgz", ".tar.gz")])
def test_tar_archives(client: TestClient, tenant: Tenant, archive_format: str,
                      suffix: str) -> None:
    uploads = [("a.jpg", images.jpeg(64, 48)), ("b.png", images.png(48, 64))]
    job_id = create_job(client, tenant, uploads, format="webp", createArchive=True,
                        archiveFormat=archive_format)
    job = wait_for_job(client, tenant, job_id)
    assert job["archive"]["filename"].endswith(suffix)
    assert job["archive"]["format"] == archive_format
    data = download(client, job["archive"]["downloadUrl"]).content
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert sorted(tf.getnames()) == ["a.webp", "b.webp"]
        member = tf.extractfile("b.webp")
        assert member is not None
        with member:
            assert images.decode(member.read()).size == (48, 64)


def test_7z_archive(client: TestClient, tenant: Tenant, tmp_path: Path) -> None:
    uploads = [("a.jpg", images.jpeg(64, 48)), ("notes/b.png", images.png(48, 64))]
    job_id = create_job(client, tenant, uploads, format="png", createArchive=True,
                        archiveFormat="7z")
    job = wait_for_job(client, tenant, job_id)
    assert job["archive"]["filename"].endswith(".7z")
    assert job["archive"]["format"] == "7z"
    data = download(client, job["archive"]["downloadUrl"]).content
    with py7zr.SevenZipFile(io.BytesIO(data)) as archive:
        archive.extractall(path=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]
    assert images.decode((tmp_path / "b.png").read_bytes()).size == (48, 64)


def test_unknown_archive_format(client: TestClient, tenant: Tenant, jpeg_bytes: bytes) -> None:
    response = post(client, "/api/jobs", tenant, [("a.jpg", jpeg_bytes)], format="png",
                    createArchive=True, archiveFormat="rar")
    assert_error(response, 400, "INVALID_FIELD", "'archiveFormat'")


def test_a_corrupt_file_fails_alone(client: TestClient, tenant: Tenant) -> None:
    uploads = [
        ("good.jpg", images.jpeg(120, 90)),
        ("broken.jpg", images.truncated_jpeg()),
        ("fine.png", images.png(90, 120)),
    ]
    job_id = create_job(client, tenant, uploads, format="png", createArchive=True)
    job = wait_for_job(client, tenant, job_id)

    assert job["status"] == "completed"
    assert (job["completedFiles"], job["failedFiles"]) == (2, 1)
    assert job["errorMessage"] is None
    good, broken, fine = job["results"]
    assert good["error"] is None and fine["error"] is None
    assert broken["filename"] == "broken.jpg"
    assert broken["error"] and broken["errorCode"] == "CORRUPT_FILE"
    assert broken["downloadUrl"] is None and broken["storedFileId"] is None
    assert images.decode(download(client, fine["downloadUrl"]).content).size == (90, 120)
    with zipfile.ZipFile(io.BytesIO(download(client, job["archive"]["downloadUrl"]).content)) \
            as zf:
        assert sorted(zf.namelist()) == ["fine.png", "good.png"]


def test_all_files_bad_fails_the_job(client: TestClient, tenant: Tenant) -> None:
    uploads = [("broken.jpg", images.truncated_jpeg()), ("notes.txt", b"just some text\n")]
    job_id = create_job(client, tenant, uploads, format="png")
    job = wait_for_job(client, tenant, job_id)

    assert job["status"] == "failed"
    assert job["errorMessage"]
    assert (job["completedFiles"], job["failedFiles"]) == (0, 2)
    assert [r["errorCode"] for r in job["results"]] == ["CORRUPT_FILE", "UNSUPPORTED_MEDIA"]
    assert all(r["error"] for r in job["results"])


def test_compress_job(client: TestClient, tenant: Tenant) -> None:
    source = images.jpeg(400, 300, quality=98)
    job_id = create_job(client, tenant, [("photo.jpg", source)], jobType="compress",
                        quality=50)
    job = wait_for_job(client, tenant, job_id)

    assert job["jobType"] == "compress"
    assert job["status"] == "completed"
    [result] = job["results"]
    assert (result["format"], result["mimeType"]) == ("jpg", "image/jpeg")
    assert result["finalSize"] < len(source)
    out = images.decode(download(client, result["downloadUrl"]).content)
    assert (out.format, out.size) == ("JPEG", (400, 300))


def test_compress_job_with_per_file_settings(client: TestClient, tenant: Tenant) -> None:
    photo = images.jpeg(400, 300, quality=98)
    shot = images.png(160, 120, alpha=True)
    target = len(photo) // 3
    job_id = create_job(client, tenant, [("photo.jpg", photo), ("shot.png", shot)],
                        jobType="compress", modes=["target-size", "quality"],
                        targetByteValues=[target, None], losslessValues=[False, True])
    job = wait_for_job(client, tenant, job_id)
    assert job["status"] == "completed", job
    fitted, lossless = job["results"]
    assert fitted["finalSize"] <= target
    assert images.decode(download(client, fitted["downloadUrl"]).content).size == (400, 300)
    assert images.decode(download(client, lossless["downloadUrl"]).content).image.tobytes() \
        == images.decode(shot).image.tobytes()


def test_unknown_job_type(client: TestClient, tenant: Tenant, jpeg_bytes: bytes) -> None:
    response = post(client, "/api/jobs", tenant, [("a.jpg", jpeg_bytes)], format="png",
                    jobType="transcode")
    assert_error(response, 400, "INVALID_FIELD", "'jobType'")


def _job_objects(app_env: AppEnv, tenant: Tenant) -> list[str]:
    return sorted(app_env.services.storage.list_prefix(f"tenants/{tenant.tenant}/jobs/"))


def test_job_validation_matches_convert(app_env: AppEnv, client: TestClient, tenant: Tenant,
                                        jpeg_bytes: bytes) -> None:
    response = post(client, "/api/jobs", tenant, [("a.jpg", jpeg_bytes), ("b.jpg", jpeg_bytes)],
                    formats=["png"])
    assert_error(response, 400, "ARRAY_LENGTH_MISMATCH", "'formats'")
    assert list_jobs(client, tenant)["pagination"]["total"] == 0
    # Sources stored while the body arrived are removed again.
    assert _job_objects(app_env, tenant) == []


# --- idempotency ------------------------------------------------------------------------


def test_idempotency_key_replays_the_same_job(app_env: AppEnv, client: TestClient,
                                              tenant: Tenant, other_tenant: Tenant,
                                              jpeg_bytes: bytes) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = post(client, "/api/jobs", tenant, [("a.jpg", jpeg_bytes)], format="png",
                 headers=headers)
    second = post(client, "/api/jobs", tenant, [("a.jpg", jpeg_bytes)], format="png",
                  headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json()["jobId"] == second.json()["jobId"]
    assert second.headers["idempotent-replayed"] == "true"
    listing = list_jobs(client, tenant)
    assert listing["pagination"]["total"] == 1
    assert [j["jobId"] for j in listing["jobs"]] == [first.json()["jobId"]]
    # The replayed request's upload is not kept beside the first job's.
    first_id = first.json()["jobId"]
    assert all(f"/jobs/{first_id}/" in key for key in _job_objects(app_env, tenant))

    theirs = post(client, "/api/jobs", other_tenant, [("a.jpg", jpeg_bytes)], format="png",
                  headers=headers)
    assert theirs.status_code == 200
    assert theirs.json()["jobId"] != first.json()["jobId"]
    for who, response in ((tenant, first), (other_tenant, theirs)):
        assert wait_for_job(client, who, response.json()["jobId"])["status"] == "completed"


@pytest.mark.parametrize("change", ["bytes", "order", "field", "name", "archive", "priority"])
def test_a_key_replayed_with_a_different_request_is_409(client: TestClient, tenant: Tenant,
                                                        change: str) -> None:
    a, b = ("a.png", images.png(30, 20, seed=1)), ("b.png", images.png(30, 20, seed=2))
    fields: dict[str, Any] = {"format": "webp"}
    headers = {"Idempotency-Key": f"order-{change}"}
    first = post(client, "/api/jobs", tenant, [a, b], headers=headers, **fields)
    assert first.status_code == 200, first.text
    uploads = [a, b]
    if change == "bytes":
        uploads = [a, ("b.png", images.png(30, 20, seed=3))]
    elif change == "order":
        uploads = [b, a]
    elif change == "field":
        fields["format"] = "jpg"
    elif change == "name":
        uploads = [a, ("c.png", b[1])]
    elif change == "archive":
        fields["createArchive"] = True
    else:
        fields["priority"] = "high"
    second = post(client, "/api/jobs", tenant, uploads, headers=headers, **fields)
    body = assert_error(second, 409, "IDEMPOTENCY_MISMATCH", "different request")
    assert body["detail"] == {"jobId": first.json()["jobId"]}
    assert list_jobs(client, tenant)["pagination"]["total"] == 1
    # The request it was first sent with still replays the job.
    third = post(client, "/api/jobs", tenant, [a, b], headers=headers, format="webp")
    assert (third.status_code, third.json()["jobId"]) == (200, first.json()["jobId"])
    assert third.headers["idempotent-replayed"] == "true"


def test_a_replay_spelling_out_the_defaults_is_the_same_request(
        client: TestClient, tenant: Tenant) -> None:
    upload = ("a.png", images.png(30, 20))
    headers = {"Idempotency-Key": "spelled-out"}
    first = post(client, "/api/jobs", tenant, [upload], headers=headers, format="webp")
    second = post(client, "/api/jobs", tenant, [upload], headers=headers, format="webp",
                  formats=["webp"], priority="normal", createArchive=False,
                  archiveFormat="zip", resize="original")
    assert (second.status_code, second.json()["jobId"]) == (200, first.json()["jobId"])
    assert wait_for_job(client, tenant, first.json()["jobId"])["status"] == "completed"


def test_the_fingerprint_holds_each_uploads_digest(app_env: AppEnv, client: TestClient,
                                                   tenant: Tenant) -> None:
    data = images.png(30, 20)
    response = post(client, "/api/jobs", tenant, [("a.png", data)], format="webp",
                    headers={"Idempotency-Key": "digest"})
    job = app_env.services.jobs.get(response.json()["jobId"])
    assert job is not None
    request = jobs.JobRequest(specs=job.specs, paths=(Path("unused"),),
                              idempotency_key="digest",
                              digests=(f"sha256:{hashlib.sha256(data).hexdigest()}",))
    assert job.extra[jobs.FINGERPRINT] == jobs.fingerprint(request)
    unkeyed = post(client, "/api/jobs", tenant, [("a.png", data)], format="webp")
    stored = app_env.services.jobs.get(unkeyed.json()["jobId"])
    assert stored is not None and jobs.FINGERPRINT not in stored.extra


def test_a_job_stored_without_a_fingerprint_replays_as_before(
        app_env: AppEnv, client: TestClient, tenant: Tenant, tmp_path: Path) -> None:
    svc = app_env.services
    made = store_job(svc, tenant, [("a.png", images.png(30, 20))], tmp_path)
    older = dataclasses.replace(made, id=str(uuid.uuid4()))  # as an earlier version kept it
    assert jobs.FINGERPRINT not in older.extra
    assert svc.jobs.create(older, "from-before", svc.settings.idempotency_ttl)[1]
    again = post(client, "/api/jobs", tenant, [("other.png", images.png(10, 10))],
                 format="jpg", headers={"Idempotency-Key": "from-before"})
    assert (again.status_code, again.json()["jobId"]) == (200, older.id)
    assert again.headers["idempotent-replayed"] == "true"


def test_a_racing_replay_with_another_request_stores_nothing(
        app_env: AppEnv, tenant: Tenant, tmp_path: Path) -> None:
    """The store's own check (two requests with one key in flight at once): the second
    finds the key taken by the first and is refused, storing nothing."""
    svc = app_env.services
    data = images.png(30, 20)

    def request(fmt: OutputFormat) -> jobs.JobRequest:
        path = tmp_path / f"upload-{fmt.value}"
        path.write_bytes(data)
        return jobs.JobRequest(specs=(FileSpec(index=0, filename="a.png", format=fmt),),
                               paths=(path,), idempotency_key="race",
                               digests=(f"sha256:{hashlib.sha256(data).hexdigest()}",))

    def store(fmt: OutputFormat) -> tuple[Job, bool]:
        sources = jobs.source_store(svc, tenant.tenant)
        try:
            return jobs.store(svc, tenant.tenant, request(fmt), sources, base_url="")
        except BaseException:
            sources.discard()
            raise
        finally:
            sources.close()

    first, created = store(OutputFormat.PNG)
    assert created
    with pytest.raises(errors.IdempotencyMismatchError):
        store(OutputFormat.JPG)
    assert store(OutputFormat.PNG) == (first, False)
    assert svc.jobs.list(tenant.tenant, limit=10, offset=0, status=None)[1] == 1


def test_idempotency_key_too_long(client: TestClient, tenant: Tenant,
                                  jpeg_bytes: bytes) -> None:
    response = post(client, "/api/jobs", tenant, [("a.jpg", jpeg_bytes)], format="png",
                    headers={"Idempotency-Key": "k" * 256})
    assert_error(response, 400, "INVALID_FIELD", "Idempotency-Key")


# --- listing ----------------------------------------------------------------------------


def test_list_pages_and_filters(app_env: AppEnv, client: TestClient, tenant: Tenant,
                                other_tenant: Tenant, tmp_path: Path) -> None:
    done = [create_job(client, tenant, [(f"{i}.jpg", images.jpeg(64, 48, seed=i))],
                       format="png") for i in range(3)]
    for job_id in done:
        wait_for_job(client, tenant, job_id)
    pending = store_job(app_env.services, tenant, [("later.jpg", images.jpeg(64, 48))],
                        tmp_path).id
    create_job(client, other_tenant, [("theirs.jpg", images.jpeg(64, 48))], format="png")

    everything = list_jobs(client, tenant)
    assert everything["pagination"] == {"limit": 20, "offset": 0, "total": 4, "hasMore": False}
    ids = [j["jobId"] for j in everything["jobs"]]
    assert ids == [pending, *reversed(done)]  # newest first

    first = list_jobs(client, tenant, limit=3)
    assert [j["jobId"] for j in first["jobs"]] == ids[:3]
    assert first["pagination"] == {"limit": 3, "offset": 0, "total": 4, "hasMore": True}
    rest = list_jobs(client, tenant, limit=3, offset=3)
    assert [j["jobId"] for j in rest["jobs"]] == ids[3:]
    assert rest["pagination"]["hasMore"] is False
    assert list_jobs(client, tenant, offset=10)["jobs"] == []

    completed = list_jobs(client, tenant, status="completed")
    assert sorted(j["jobId"] for j in completed["jobs"]) == sorted(done)
    assert completed["pagination"]["total"] == 3
    assert [j["jobId"] for j in list_jobs(client, tenant, status="pending")["jobs"]] == [pending]
    assert list_jobs(client, tenant, status="failed")["jobs"] == []
    # Each entry has the same shape as GET /api/jobs/{id}.
    assert everything["jobs"][0].keys() >= JOB_KEYS


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"status": "done"}, "status"),
    ],
)
def test_list_rejects_bad_parameters(client: TestClient, tenant: Tenant,
                                     params: dict[str, object], field: str) -> None:
    response = client.get("/api/jobs", headers=tenant.headers, params=params)
    assert_error(response, 400, "INVALID_FIELD", f"'{field}'")


def test_list_accepts_the_limit_bounds(client: TestClient, tenant: Tenant) -> None:
    assert list_jobs(client, tenant, limit=1)["pagination"]["limit"] == 1
    assert list_jobs(client, tenant, limit=100)["pagination"]["limit"] == 100


# --- getting and cancelling -------------------------------------------------------------


def test_unknown_job_is_404(client: TestClient, tenant: Tenant) -> None:
    missing = str(uuid.uuid4())
    assert_error(client.get(f"/api/jobs/{missing}", headers=tenant.headers), 404, "NOT_FOUND",
                 missing)
    assert_error(client.delete(f"/api/jobs/{missing}", headers=tenant.headers), 404,
                 "NOT_FOUND")


def test_cancel_a_finished_job_is_409(client: TestClient, tenant: Tenant,
                                      jpeg_bytes: bytes) -> None:
    job_id = create_job(client, tenant, [("a.jpg", jpeg_bytes)], format="png")
    wait_for_job(client, tenant, job_id)
    response = client.delete(f"/api/jobs/{job_id}", headers=tenant.headers)
    assert_error(response, 409, "CONFLICT", "completed")
    assert get_job(client, tenant, job_id)["status"] == "completed"


def test_cancel_a_pending_job(app_env: AppEnv, client: TestClient, tenant: Tenant,
                              tmp_path: Path) -> None:
    # Stored but never handed to the executor: deterministically pending.
    job = store_job(app_env.services, tenant, [("a.jpg", images.jpeg(64, 48))], tmp_path)
    assert get_job(client, tenant, job.id)["status"] == "pending"

    response = client.delete(f"/api/jobs/{job.id}", headers=tenant.headers)

    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["jobId"] == job.id
    assert cancelled["status"] == "failed"
    assert cancelled["cancelled"] is True
    assert cancelled["errorMessage"]
    assert cancelled["completedAt"]
    # Its files never started: each says why, and the counts agree.
    assert cancelled["failedFiles"] == 1 and cancelled["completedFiles"] == 0
    assert cancelled["progress"] == 100
    [result] = cancelled["results"]
    assert (result["status"], result["errorCode"]) == ("failed", "CANCELLED")
    assert result["error"] == cancelled["errorMessage"]
    again = get_job(client, tenant, job.id)
    assert again["cancelled"] is True and again["results"] == cancelled["results"]
    assert_error(client.delete(f"/api/jobs/{job.id}", headers=tenant.headers), 409,
                 "CONFLICT")


def test_each_files_queue_is_sniffed_from_the_bytes_that_streamed_in(
        app_env: AppEnv, client: TestClient, tenant: Tenant) -> None:
    import wave

    sound = io.BytesIO()
    with wave.open(sound, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 800)
    response = post(client, "/api/jobs", tenant,
                    [("a.png", images.png(30, 20)), ("b.wav", sound.getvalue())],
                    formats=["webp", "mp3"])
    job = app_env.services.jobs.get(response.json()["jobId"])
    assert job is not None and job.extra["families"] == ["image", "media"]
    assert wait_for_job(client, tenant, job.id)["status"] == "completed"


def test_every_file_of_a_deep_job_has_its_own_result_and_stored_file(
        app_env: AppEnv, client: TestClient, tenant: Tenant) -> None:
    # Enough files that the embedded pool hands them over in chunks, recorded together.
    count = 24
    uploads = [(f"{i}.png", images.png(8 + i % 5, 8, seed=i)) for i in range(count)]
    response = post(client, "/api/jobs", tenant, uploads, format="png")
    job = wait_for_job(client, tenant, response.json()["jobId"])
    assert (job["status"], job["completedFiles"]) == ("completed", count)
    results = sorted(job["results"], key=lambda r: r["index"])
    assert [r["width"] for r in results] == [8 + i % 5 for i in range(count)]
    ids = {r["storedFileId"] for r in results}
    assert len(ids) == count
    for file_id in ids:
        assert app_env.services.files.get(file_id, tenant.tenant) is not None
