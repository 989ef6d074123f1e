"""Webhooks: endpoints, signed job events delivered in order to a real HTTP receiver,
retries with backoff, the delivery log, manual retries, tenant isolation and restarts."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from convertly import library, pipeline, webhooks
from convertly.errors import ServiceUnavailableError
from convertly.settings import Settings
from convertly.state.records import EVENT_TYPES
from tests import images
from tests.api.library_support import listed_ids, put_signed, start_upload, upload
from tests.api.support import (
    AppEnv,
    Tenant,
    assert_error,
    create_job,
    deployed,
    download,
    get_job,
    running_app,
    store_job,
    wait_for_job,
)
from tests.receiver import Received, Receiver, kinds

README = Path(__file__).resolve().parents[2] / "README.md"
STARTED, PROGRESS, COMPLETED, FAILED = (
    "conversion.started", "conversion.progress", "conversion.completed", "conversion.failed")
TOOL_COMPLETED, TOOL_FAILED = "media.tool.completed", "media.tool.failed"
FILE_UPLOADED = "file.uploaded"
JOB_EVENTS = [STARTED, PROGRESS, COMPLETED, FAILED]  # without each output's file.uploaded
# Tiny delays so retries take milliseconds; receivers on loopback are allowed.
HOOKS = {
    "webhook_allow_private": True,
    "webhook_retry_delay": 0.05,
    "webhook_retry_max_delay": 0.2,
    "webhook_max_attempts": 3,
    "webhook_timeout": 2.0,
    "webhook_progress_interval": 0.0,
}
Verify = Callable[[bytes, str, str], bool]


@pytest.fixture(scope="module")
def verify() -> Verify:
    """The README's verification snippet, run as a receiver would run it."""
    match = re.search(r"<!-- webhook-verify[^>]*-->\n```python\n(.*?)```", README.read_text(),
                      re.S)
    assert match is not None, "README lost its signature verification snippet"
    code = match.group(1)
    assert len(code.strip().splitlines()) <= 10
    namespace: dict[str, Any] = {}
    exec(compile(code, str(README), "exec"), namespace)
    fn: Verify = namespace["verify"]
    return fn


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture(scope="module")
def hook_env(mode: str, tmp_path_factory: pytest.TempPathFactory,
             request: pytest.FixtureRequest) -> Iterator[AppEnv]:
    settings, cluster = deployed(
        mode, Settings(data_dir=tmp_path_factory.mktemp(f"hooks-{mode}"), workers=2, **HOOKS),
        request)
    with running_app(mode, settings, cluster) as env:
        yield env


def _endpoint(client: TestClient, tenant: Tenant, url: str, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/webhooks", headers=tenant.headers, json={"url": url, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _deliveries(client: TestClient, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/webhooks/deliveries", headers=tenant.headers, params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["deliveries"]
    return found


def _log_until(client: TestClient, tenant: Tenant, job_id: str,
               done: Callable[[list[dict[str, Any]]], bool],
               timeout: float = 30.0) -> list[dict[str, Any]]:
    """The job's delivery log, oldest first, once `done` holds for it."""
    deadline = time.monotonic() + timeout
    while True:
        log = _deliveries(client, tenant, jobId=job_id)[::-1]
        if done(log):
            return log
        if time.monotonic() > deadline:
            raise AssertionError(f"delivery log never got there: {log}")
        time.sleep(0.05)


def _event(request: Received) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(request.body)
    return event


def _path(label: str, tenant: Tenant) -> str:
    return f"/{label}/{tenant.tenant}"


def _ends_with(kind: str) -> Callable[[list[Received]], bool]:
    return lambda got: bool(got) and _event(got[-1])["type"] == kind


# --- endpoints ----------------------------------------------------------------------------


def test_endpoints_are_created_listed_and_deleted(hook_env: AppEnv) -> None:
    client, tenant = hook_env.client, hook_env.new_tenant()
    created = _endpoint(client, tenant, "https://example.com/hooks",
                        events=["conversion.completed", "conversion.failed"])
    assert created.keys() == {"id", "url", "events", "createdAt", "secret"}
    assert created["id"].startswith("we_")
    assert created["secret"].startswith("whsec_") and len(created["secret"]) >= 40
    assert created["events"] == [COMPLETED, FAILED]
    # Form fields work too; events as a comma-separated list; no events means all of them.
    form = client.post("/api/webhooks", headers=tenant.headers,
                       data={"url": "https://example.com/other",
                             "events": "conversion.failed, conversion.started"})
    assert form.status_code == 201, form.text
    assert form.json()["events"] == [STARTED, FAILED]
    every = _endpoint(client, tenant, "https://example.com/all")
    assert every["events"] == ["*"]

    listed = client.get("/api/webhooks", headers=tenant.headers).json()["webhooks"]
    assert [e["id"] for e in listed] == [created["id"], form.json()["id"], every["id"]]
    assert all("secret" not in e for e in listed)  # shown once, at creation

    assert client.delete(f"/api/webhooks/{created['id']}", headers=tenant.headers).json() == {
        "id": created["id"], "deleted": True}
    listed = client.get("/api/webhooks", headers=tenant.headers).json()["webhooks"]
    assert created["id"] not in [e["id"] for e in listed]
    assert_error(client.delete(f"/api/webhooks/{created['id']}", headers=tenant.headers),
                 404, "NOT_FOUND")


def test_an_account_has_at_most_20_endpoints(hook_env: AppEnv) -> None:
    client, tenant = hook_env.client, hook_env.new_tenant()
    for i in range(webhooks.MAX_ENDPOINTS):
        _endpoint(client, tenant, f"https://example.com/{i}")
    response = client.post("/api/webhooks", headers=tenant.headers,
                           json={"url": "https://example.com/one-more"})
    assert_error(response, 409, "CONFLICT", "delete one first")
    assert len(client.get("/api/webhooks", headers=tenant.headers).json()["webhooks"]) == 20


@pytest.mark.parametrize(("body", "field"), [
    ({}, "url"),
    ({"url": "ftp://example.com/x"}, "url"),
    ({"url": "https://user:pw@example.com/x"}, "url"),
    ({"url": "https://example.com/x", "events": ["conversion.done"]}, "events"),
    ({"url": "https://example.com/x", "events": []}, "events"),
])
def test_bad_endpoints_are_400_naming_the_field(hook_env: AppEnv, body: dict[str, Any],
                                                field: str) -> None:
    tenant = hook_env.new_tenant()
    response = hook_env.client.post("/api/webhooks", headers=tenant.headers, json=body)
    assert assert_error(response, 400, "INVALID_FIELD")["detail"]["field"] == field


def test_webhook_routes_need_a_key_and_a_json_object(hook_env: AppEnv) -> None:
    client = hook_env.client
    assert_error(client.get("/api/webhooks"), 401, "UNAUTHORIZED")
    assert_error(client.get("/api/webhooks/deliveries"), 401, "UNAUTHORIZED")
    tenant = hook_env.new_tenant()
    assert_error(client.post("/api/webhooks", headers=tenant.headers, content=b"[1, 2]",
                             ), 400, "INVALID_REQUEST", "JSON object")


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://10.1.2.3/hook",
                                 "http://169.254.169.254/latest", "http://[::1]/hook",
                                 "http://[fd00::1]/hook", "http://localhost:8000/hook"])
def test_private_receivers_are_refused_by_default(client: TestClient, tenant: Tenant,
                                                  jpeg_bytes: bytes, url: str) -> None:
    """The session's app runs with the default settings: no private receivers."""
    response = client.post("/api/webhooks", headers=tenant.headers, json={"url": url})
    assert assert_error(response, 400, "INVALID_FIELD", "public")["detail"]["field"] == "url"
    response = client.post("/api/jobs", headers=tenant.headers,
                           files=[("files", ("a.jpg", jpeg_bytes, "image/jpeg"))],
                           data={"format": "png", "callbackUrl": url,
                                 "callbackSecret": "whsec_0123456789abcdef"})
    assert assert_error(response, 400, "INVALID_FIELD")["detail"]["field"] == "callbackUrl"


@pytest.mark.parametrize(("fields", "field"), [
    ({"callbackUrl": "https://example.com/x"}, "callbackSecret"),
    ({"callbackSecret": "whsec_0123456789abcdef"}, "callbackUrl"),
    ({"callbackUrl": "https://example.com/x", "callbackSecret": "short"}, "callbackSecret"),
    ({"callbackUrl": "example.com/x", "callbackSecret": "whsec_0123456789abcdef"},
     "callbackUrl"),
])
def test_callback_fields_are_checked(client: TestClient, tenant: Tenant, jpeg_bytes: bytes,
                                     fields: dict[str, str], field: str) -> None:
    response = client.post("/api/jobs", headers=tenant.headers,
                           files=[("files", ("a.jpg", jpeg_bytes, "image/jpeg"))],
                           data={"format": "png", **fields})
    assert assert_error(response, 400, "INVALID_FIELD")["detail"]["field"] == field


# --- events -------------------------------------------------------------------------------


def test_a_jobs_events_arrive_signed_and_in_order(hook_env: AppEnv, receiver: Receiver,
                                                  verify: Verify) -> None:
    client, tenant = hook_env.client, hook_env.new_tenant()
    account_path, callback_path = _path("account", tenant), _path("callback", tenant)
    only_completed = _path("completed-only", tenant)
    account = _endpoint(client, tenant, receiver.url(account_path))
    _endpoint(client, tenant, receiver.url(only_completed), events=[COMPLETED])
    callback_secret = "whsec_" + secrets.token_hex(16)
    uploads = [(f"{i}.jpg", images.jpeg(240, 180, seed=i)) for i in range(3)]
    job_id = create_job(client, tenant, uploads, format="png",
                        callbackUrl=receiver.url(callback_path), callbackSecret=callback_secret)
    job = wait_for_job(client, tenant, job_id)
    assert job["status"] == "completed", job

    # The account endpoint (every event) also gets each output's file.uploaded; the job's
    # callback only the job's own events.
    outputs = {r["storedFileId"] for r in job["results"]}
    assert len(outputs) == 3
    stored = receiver.wait_for(account_path, lambda got: len(
        [r for r in got if _event(r)["type"] == FILE_UPLOADED]) == 3)
    assert {_event(r)["data"]["id"] for r in stored
            if _event(r)["type"] == FILE_UPLOADED} == outputs
    for path, secret in ((account_path, account["secret"]), (callback_path, callback_secret)):
        got = [r for r in receiver.wait_for(path, lambda got: COMPLETED in kinds(got))
               if _event(r)["type"] != FILE_UPLOADED]
        types = kinds(got)
        assert types[0] == STARTED and types[-1] == COMPLETED, types
        assert set(types[1:-1]) <= {PROGRESS}, types
        percents = [_event(r)["data"]["progress"] for r in got[1:-1]]
        assert percents == sorted(set(percents)) and all(0 < p < 100 for p in percents)
        events = [_event(r) for r in got]
        assert len({e["id"] for e in events}) == len(events)
        for request, event in zip(got, events, strict=True):
            assert verify(request.body, request.headers["convertly-signature"], secret)
            assert not verify(request.body, request.headers["convertly-signature"],
                              "whsec_not-the-secret")
            assert not verify(request.body + b" ", request.headers["convertly-signature"],
                              secret)
            assert request.headers["content-type"] == "application/json"
            assert request.headers["convertly-event-id"] == event["id"]
            assert request.headers["convertly-event"] == event["type"]
            signed_at = request.headers["convertly-signature"].split(",")[0]
            assert signed_at == f"t={request.headers['convertly-timestamp']}"
            assert request.headers["user-agent"] == "Convertly-Webhooks/1.0"
            assert event.keys() == {"id", "type", "created", "data"}
            assert event["id"].startswith("evt_")
            assert abs(event["created"] - time.time()) < 120
            assert event["data"]["jobId"] == job_id
            assert event["data"].keys() == job.keys()  # the job as GET /api/jobs/{id}
        assert events[0]["data"]["status"] == "processing"
        final = events[-1]["data"]
        assert (final["status"], final["progress"], final["completedFiles"]) == (
            "completed", 100, 3)
        assert [r["outputFilename"] for r in final["results"]] == ["0.png", "1.png", "2.png"]
        assert all(r["downloadUrl"].startswith("http://testserver/api/download/")
                   for r in final["results"])
        # The links work (signed by the API that sent the event, whoever emitted it).
        out = images.decode(download(client, final["results"][1]["downloadUrl"]).content)
        assert (out.format, out.size) == ("PNG", (240, 180))

    assert kinds(receiver.wait_for(only_completed, _ends_with(COMPLETED))) == [COMPLETED]
    log = _log_until(client, tenant, job_id,
                     lambda ds: len(ds) >= 5 and all(d["status"] == "succeeded" for d in ds))
    assert {d["attempts"] for d in log} == {1}
    assert {d["responseCode"] for d in log} == {200}


def test_progress_events_only_go_forward_and_are_throttled(
        hook_env: AppEnv, receiver: Receiver, tmp_path: Path) -> None:
    """The files of a job run here, one by one, as a worker runs them."""
    client, tenant = hook_env.client, hook_env.new_tenant()
    path = _path("progress", tenant)
    _endpoint(client, tenant, receiver.url(path), events=JOB_EVENTS)
    svc = hook_env.services
    job = store_job(svc, tenant, [(f"{i}.jpg", images.jpeg(64, 48, seed=i)) for i in range(4)],
                    tmp_path / "spool")
    assert pipeline.run_file(svc, job.id, 0) is False  # started, then 25 %
    assert pipeline.run_file(svc, job.id, 1) is False  # 50 %
    slow = dataclasses.replace(svc, settings=svc.settings.replace(
        webhook_progress_interval=3600.0))
    assert pipeline.run_file(slow, job.id, 2) is False  # 75 %, but too soon after 50 %
    assert pipeline.run_file(svc, job.id, 3) is True
    pipeline.finalize_job(svc, job.id)
    pipeline.finalize_job(svc, job.id)  # again (a redelivered task): no second event

    got = receiver.wait_for(path, _ends_with(COMPLETED))
    assert kinds(got) == [STARTED, PROGRESS, PROGRESS, COMPLETED]
    assert [_event(r)["data"]["progress"] for r in got] == [0, 25, 50, 100]
    time.sleep(0.3)
    assert len(receiver.at(path)) == 4


def test_a_tool_job_ends_in_a_media_tool_event(hook_env: AppEnv, receiver: Receiver) -> None:
    """Queued with async=true, a tool's job sends only its end: media.tool.completed to the
    account endpoint and its callback, media.tool.failed when the tool fails."""
    client, tenant = hook_env.client, hook_env.new_tenant()
    account, callback = _path("tool-account", tenant), _path("tool-callback", tenant)
    _endpoint(client, tenant, receiver.url(account), events=[TOOL_COMPLETED, TOOL_FAILED])

    def queue(name: str, data: bytes, **fields: str) -> str:
        response = client.post("/api/media/strip-metadata", headers=tenant.headers,
                               files={"file": (name, data)}, data={"async": "true", **fields})
        assert response.status_code == 202, response.text
        job_id: str = response.json()["jobId"]
        return job_id

    done = queue("photo.jpg", images.jpeg(48, 32), callbackUrl=receiver.url(callback),
                 callbackSecret="whsec_" + secrets.token_hex(16))
    assert wait_for_job(client, tenant, done)["status"] == "completed"
    for path in (account, callback):
        [event] = receiver.wait_for(path, _ends_with(TOOL_COMPLETED))
        data = _event(event)["data"]
        assert (data["jobId"], data["tool"], data["status"]) == (done, "strip-metadata",
                                                                 "completed")
        assert data["results"][0]["outputFilename"] == "photo.jpg"

    # An MP3's first frame header, then nothing ffmpeg can read: sniffed as MP3, it fails
    # in the tool.
    broken = queue("song.mp3", b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 64)
    assert wait_for_job(client, tenant, broken)["status"] == "failed"
    got = receiver.wait_for(account, _ends_with(TOOL_FAILED))
    assert kinds(got) == [TOOL_COMPLETED, TOOL_FAILED]
    assert _event(got[-1])["data"]["jobId"] == broken


def test_every_stored_file_sends_one_file_uploaded_event(
        hook_env: AppEnv, receiver: Receiver, verify: Verify) -> None:
    """An upload, a completed direct upload, a saveToStorage conversion (its source and
    output) and a job's output (stored by a worker): one signed event each, carrying the
    file as GET /api/files/{id} answers it; none for what is not a listed file."""
    client, tenant = hook_env.client, hook_env.new_tenant()
    files_path, jobs_path = _path("files", tenant), _path("files-jobs", tenant)
    endpoint = _endpoint(client, tenant, receiver.url(files_path), events=[FILE_UPLOADED])
    _endpoint(client, tenant, receiver.url(jobs_path), events=[COMPLETED])

    uploaded = upload(client, tenant, "photo.jpg", images.jpeg(40, 30),
                      content_type="image/jpeg")
    photo = images.png(20, 10)
    session = start_upload(client, tenant, "direct.png", len(photo), content_type="image/png")
    # Pending, an upload is no file yet: no event.
    assert put_signed(client, session["upload"]["signedUrl"], photo, "image/png").status_code \
        == 200
    for status in (201, 200):  # completing again is idempotent: still one event
        response = client.post("/api/uploads/complete", headers=tenant.headers,
                               json=session["complete"]["body"])
        assert response.status_code == status, response.text
    converted = client.post("/api/convert", headers=tenant.headers,
                            files={"files": ("kept.jpg", images.jpeg(32, 24))},
                            data={"format": "png", "saveToStorage": "true"})
    assert converted.status_code == 200, converted.text
    client.post("/api/convert", headers=tenant.headers,  # a temporary output: no event
                files={"files": ("gone.jpg", images.jpeg(32, 24))}, data={"format": "png"})
    job_id = create_job(client, tenant, [("job.jpg", images.jpeg(24, 16))], format="webp")
    assert wait_for_job(client, tenant, job_id)["status"] == "completed"
    receiver.wait_for(jobs_path, _ends_with(COMPLETED))
    beside = None
    for preview in (False, True):  # a tool's output stored beside its file; a preview is not
        response = client.post(f"/api/files/{uploaded['id']}/tools", headers=tenant.headers,
                               json={"tool": "strip-metadata", "preview": preview})
        assert response.status_code == 200, response.text
        beside = beside or response.json()["file"]["id"]

    listed = set(listed_ids(client, tenant))
    # The upload, the direct upload, the conversion's source and output, the job's output and
    # the tool's.
    assert len(listed) == 6 and beside in listed
    receiver.wait_for(files_path, lambda got: len(got) >= len(listed))
    time.sleep(0.3)  # nothing more arrives
    got = receiver.at(files_path)
    events = [_event(r) for r in got]
    assert [e["type"] for e in events] == [FILE_UPLOADED] * len(listed)
    assert {e["data"]["id"] for e in events} == listed
    assert len({e["id"] for e in events}) == len(events)
    for request, event in zip(got, events, strict=True):
        assert verify(request.body, request.headers["convertly-signature"], endpoint["secret"])
        assert request.headers["convertly-event"] == FILE_UPLOADED
        assert request.headers["convertly-event-id"] == event["id"]
        response = client.get(f"/api/files/{event['data']['id']}", headers=tenant.headers)
        assert response.status_code == 200, response.text
        current = response.json()["file"]
        links = {"download_url", "downloadUrl"}
        assert {k: v for k, v in event["data"].items() if k not in links} == \
            {k: v for k, v in current.items() if k not in links}
        assert download(client, event["data"]["downloadUrl"]).content  # a working link
    by_id = {e["data"]["id"]: e["data"] for e in events}
    assert by_id[uploaded["id"]]["filename"] == "photo.jpg"
    assert by_id[session["fileId"]]["size_bytes"] == len(photo)
    job_outputs = [d for d in by_id.values() if d["metadata"]["jobId"] == job_id]
    assert [d["filename"] for d in job_outputs] == ["job.webp"]
    # The job's endpoint asked for conversion.completed only.
    assert FILE_UPLOADED not in kinds(receiver.at(jobs_path))
    log = _log_until(client, tenant, uploaded["id"],
                     lambda ds: len(ds) == 1 and ds[0]["status"] == "succeeded")
    assert log[0]["type"] == FILE_UPLOADED
    spec = client.get("/openapi.json").json()["components"]["schemas"]
    assert FILE_UPLOADED in spec["CreateWebhookRequest"]["properties"]["events"]["items"]["enum"]


class _BrokenStore:
    """A webhook store whose every call fails, as an unreachable one would."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise ServiceUnavailableError("webhook state is down")
        return fail


def test_webhook_trouble_never_fails_a_conversion(hook_env: AppEnv, tmp_path: Path) -> None:
    tenant = hook_env.new_tenant()
    svc = dataclasses.replace(hook_env.services, webhooks=_BrokenStore())
    job = store_job(svc, tenant, [(f"{i}.jpg", images.jpeg(64, 48, seed=i)) for i in range(2)],
                    tmp_path / "spool")
    assert pipeline.run_file(svc, job.id, 0) is False
    assert pipeline.run_file(svc, job.id, 1) is True
    assert pipeline.finalize_job(svc, job.id).status.value == "completed"
    assert get_job(hook_env.client, tenant, job.id)["completedFiles"] == 2


def test_webhook_trouble_never_fails_storing_a_file(hook_env: AppEnv,
                                                     tmp_path: Path) -> None:
    tenant = hook_env.new_tenant()
    svc = dataclasses.replace(hook_env.services, webhooks=_BrokenStore())
    spooled = tmp_path / "spooled.jpg"
    spooled.write_bytes(images.jpeg(16, 12))
    record = library.add_upload(svc, tenant.tenant, spooled, "kept.jpg", None, None)
    assert listed_ids(hook_env.client, tenant) == [record.id]


def test_a_cancelled_job_emits_failed(hook_env: AppEnv, receiver: Receiver,
                                      tmp_path: Path) -> None:
    client, tenant = hook_env.client, hook_env.new_tenant()
    path = _path("cancelled", tenant)
    _endpoint(client, tenant, receiver.url(path), events=[FAILED])
    job = store_job(hook_env.services, tenant, [("a.jpg", images.jpeg(32, 32))],
                    tmp_path / "spool")
    assert client.delete(f"/api/jobs/{job.id}", headers=tenant.headers).status_code == 200
    [request] = receiver.wait_for(path, _ends_with(FAILED))
    data = _event(request)["data"]
    assert (data["status"], data["cancelled"], data["jobId"]) == ("failed", True, job.id)


# --- retries and the delivery log ---------------------------------------------------------


def test_a_failing_receiver_is_retried_in_order(hook_env: AppEnv, receiver: Receiver,
                                                jpeg_bytes: bytes) -> None:
    client, tenant = hook_env.client, hook_env.new_tenant()
    path = _path("flaky", tenant)
    receiver.answer(path, 500, 500)  # then 200
    _endpoint(client, tenant, receiver.url(path), events=JOB_EVENTS)
    job_id = create_job(client, tenant, [("a.jpg", jpeg_bytes)], format="webp")
    assert wait_for_job(client, tenant, job_id)["status"] == "completed"

    got = receiver.wait_for(path, _ends_with(COMPLETED))
    # The completed event waited for the started one, retried twice.
    assert kinds(got) == [STARTED, STARTED, STARTED, COMPLETED]
    assert len({_event(r)["id"] for r in got[:3]}) == 1  # the same event each time
    gaps = [b.at - a.at for a, b in itertools.pairwise(got[:3])]
    assert all(g >= 0.04 for g in gaps), gaps  # backoff from CONVERTLY_WEBHOOK_RETRY_DELAY

    log = _log_until(client, tenant, job_id,
                     lambda ds: len(ds) == 2 and all(d["status"] == "succeeded" for d in ds))
    started, completed = log
    assert (started["type"], started["attempts"], started["responseCode"]) == (STARTED, 3, 200)
    assert started["lastError"] is None and started["nextAttemptAt"] is None
    assert started["eventId"] == _event(got[0])["id"]
    assert started["url"] == receiver.url(path)
    assert (completed["type"], completed["attempts"]) == (COMPLETED, 1)


def test_a_failed_delivery_can_be_retried(hook_env: AppEnv, receiver: Receiver,
                                          tmp_path: Path) -> None:
    client, tenant = hook_env.client, hook_env.new_tenant()
    path = _path("down", tenant)
    receiver.answer(path, then=500)
    _endpoint(client, tenant, receiver.url(path))
    job = store_job(hook_env.services, tenant, [("a.jpg", images.jpeg(32, 32))],
                    tmp_path / "spool")
    assert client.delete(f"/api/jobs/{job.id}", headers=tenant.headers).status_code == 200

    [failed] = _log_until(client, tenant, job.id,
                          lambda ds: len(ds) == 1 and ds[0]["status"] == "failed")
    assert (failed["attempts"], failed["maxAttempts"]) == (3, 3)
    assert (failed["responseCode"], failed["lastError"]) == (500, "HTTP 500")
    assert failed["responseExcerpt"].startswith("receiver says no")
    assert len(failed["responseExcerpt"]) <= 256  # the answer had 2 KB
    assert failed["nextAttemptAt"] is None and failed["finishedAt"] is not None
    assert len(receiver.at(path)) == 3

    receiver.answer(path, then=200, delay=0.5)
    retried = client.post(f"/api/webhooks/deliveries/{failed['id']}/retry",
                          headers=tenant.headers)
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["maxAttempts"]) == ("pending", 4)
    assert_error(client.post(f"/api/webhooks/deliveries/{failed['id']}/retry",
                             headers=tenant.headers), 409, "CONFLICT", "pending")
    [done] = _log_until(client, tenant, job.id, lambda ds: ds[0]["status"] == "succeeded")
    assert (done["attempts"], done["responseCode"], done["lastError"]) == (4, 200, None)
    assert len(receiver.at(path)) == 4
    assert_error(client.post("/api/webhooks/deliveries/wd_nope/retry",
                             headers=tenant.headers), 404, "NOT_FOUND")


def test_tenants_never_see_each_others_webhooks(hook_env: AppEnv, receiver: Receiver,
                                                tmp_path: Path) -> None:
    client = hook_env.client
    owner, stranger = hook_env.new_tenant("owner"), hook_env.new_tenant("stranger")
    path = _path("private", owner)
    endpoint = _endpoint(client, owner, receiver.url(path))
    job = store_job(hook_env.services, owner, [("a.jpg", images.jpeg(32, 32))],
                    tmp_path / "spool")
    assert client.delete(f"/api/jobs/{job.id}", headers=owner.headers).status_code == 200
    [delivery] = _log_until(client, owner, job.id,
                            lambda ds: len(ds) == 1 and ds[0]["status"] == "succeeded")

    assert client.get("/api/webhooks", headers=stranger.headers).json() == {"webhooks": []}
    assert _deliveries(client, stranger) == []
    assert _deliveries(client, stranger, jobId=job.id) == []
    assert_error(client.delete(f"/api/webhooks/{endpoint['id']}", headers=stranger.headers),
                 404, "NOT_FOUND")
    assert_error(client.post(f"/api/webhooks/deliveries/{delivery['id']}/retry",
                             headers=stranger.headers), 404, "NOT_FOUND")
    # The stranger's own endpoint gets none of the owner's events.
    _endpoint(client, stranger, receiver.url(_path("private", stranger)))
    assert [e["id"] for e in client.get("/api/webhooks", headers=owner.headers).json()[
        "webhooks"]] == [endpoint["id"]]
    assert receiver.at(_path("private", stranger)) == []


def test_pending_deliveries_survive_a_restart(mode: str, tmp_path: Path, receiver: Receiver,
                                              request: pytest.FixtureRequest) -> None:
    settings, cluster = deployed(mode, Settings(
        data_dir=tmp_path / "data", workers=1,
        **{**HOOKS, "webhook_max_attempts": 1000, "webhook_retry_max_delay": 0.1}), request)
    with running_app(mode, settings, cluster) as env:
        tenant = env.new_tenant()
        path = _path("restart", tenant)
        receiver.answer(path, then=503)
        _endpoint(env.client, tenant, receiver.url(path))
        job = store_job(env.services, tenant, [("a.jpg", images.jpeg(32, 32))],
                        tmp_path / "spool")
        assert env.client.delete(f"/api/jobs/{job.id}", headers=tenant.headers).status_code \
            == 200
        receiver.wait_for(path, lambda got: len(got) >= 2)
    [pending] = env.services.webhooks.deliveries(tenant.tenant, job_id=job.id, limit=5,
                                                 offset=0)[0]
    assert pending.status.value == "pending" and pending.attempts >= 2
    tried = len(receiver.at(path))

    receiver.answer(path, then=200)
    with running_app(mode, settings, cluster) as env:
        [done] = _log_until(env.client, tenant, job.id,
                            lambda ds: ds[0]["status"] == "succeeded")
        assert done["attempts"] == len(receiver.at(path)) > tried
        assert get_job(env.client, tenant, job.id)["status"] == "failed"


def test_the_readme_lists_every_event_type() -> None:
    table = README.read_text().partition("<!-- webhook-events")[2].partition("\n\n")[0]
    listed = re.findall(r"^\| `([a-z.]+)` \|", table, re.M)
    assert listed == list(EVENT_TYPES)


def test_signature_matches_the_documented_scheme(verify: Verify) -> None:
    body = b'{"id":"evt_1","type":"conversion.completed","created":1,"data":{}}'
    now = int(time.time())
    header = webhooks.sign("whsec_test", body, now)
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header)
    assert verify(body, header, "whsec_test")
    assert not verify(body, webhooks.sign("whsec_test", body, now - 3600), "whsec_test")
