"""Tenant isolation across the whole route table: every route that takes an id, called by
another tenant with the owner's ids, answers 404 and shows nothing of the owner's data.
A route added to the table without a case here fails the coverage check."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from starlette.routing import Route
from starlette.testclient import TestClient

from convertly.api.routes import ROUTES
from tests import images
from tests.api.library_support import create_folder, upload
from tests.api.support import AppEnv, Tenant, create_job, wait_for_job
from tests.streams.packaged import store_ready

# Routes whose id is a signed token rather than a tenant's id (tested with forged and
# expired tokens in test_auth and test_uploads).
TOKEN_ROUTES = {("/api/download/{token}", "GET"), ("/api/download/{token}", "HEAD"),
                ("/api/uploads/{token}", "PUT")}
# What players call with no key: a stream's playback id, its signed links and allowed
# domains are its access rules (tests/api/test_playback.py).
PLAYBACK_ROUTES = {(path, method) for path in ("/video/v1/{playback_id}/{name}",
                                               "/video/v1/{playback_id}/{folder}/{name}")
                   for method in ("GET", "OPTIONS")}
# Path parameters that name no tenant's record: a media tool.
NAME_ROUTES = {("/api/media/{tool}", "POST")}


def _owned_ids(app_env: AppEnv, client: TestClient, owner: Tenant,
               empty: Path) -> dict[str, str]:
    jpeg = images.jpeg(40, 30)
    job_id = create_job(client, owner, [("a.jpg", jpeg)], format="png")
    wait_for_job(client, owner, job_id)
    folder = create_folder(client, owner, "private")
    record = upload(client, owner, "secret.jpg", jpeg, folder_id=folder["id"])
    hook = client.post("/api/webhooks", headers=owner.headers,
                       json={"url": "https://hooks.example.com/convertly"})
    assert hook.status_code == 201, hook.text
    # The endpoint gets the events of the owner's next job: a delivery to ask about.
    create_job(client, owner, [("b.jpg", jpeg)], format="png")
    deadline = time.monotonic() + 30
    while not (deliveries := client.get("/api/webhooks/deliveries",
                                        headers=owner.headers).json()["deliveries"]):
        assert time.monotonic() < deadline, "no webhook delivery was recorded"
        time.sleep(0.05)
    # A stream's record (its files are not needed to be refused).
    stream = store_ready(app_env.services, owner.tenant, empty, title="private")
    term = client.post("/api/library/taxonomy/terms", headers=owner.headers,
                       json={"slug": "private", "label": "Private"})
    assert term.status_code == 201, term.text
    return {"job_id": job_id, "folder_id": folder["id"], "file_id": record["id"],
            "webhook_id": hook.json()["id"], "delivery_id": deliveries[0]["id"],
            "stream_id": stream.id, "term_id": term.json()["term"]["id"]}


def _calls(ids: dict[str, str]) -> dict[tuple[str, str], dict[str, Any]]:
    """One request per (path, method): what the other tenant sends."""
    return {
        ("/api/jobs/{job_id}", "GET"): {},
        ("/api/jobs/{job_id}", "DELETE"): {},
        ("/api/files/{file_id}", "GET"): {},
        ("/api/files/{file_id}", "PATCH"): {"json": {"filename": "mine.jpg"}},
        ("/api/files/{file_id}", "DELETE"): {},
        ("/api/files/{file_id}/tools", "POST"): {"json": {"tool": "strip-metadata"}},
        ("/api/files/{file_id}/ai-tags", "POST"): {"json": {"maxTags": 3}},
        ("/api/folders/{folder_id}", "PATCH"): {"json": {"name": "mine"}},
        ("/api/folders/{folder_id}", "DELETE"): {"params": {"recursive": "true"}},
        ("/api/webhooks/{webhook_id}", "DELETE"): {},
        ("/api/webhooks/deliveries/{delivery_id}/retry", "POST"): {},
        ("/api/video/streams/{stream_id}", "GET"): {},
        ("/api/video/streams/{stream_id}", "PATCH"): {"json": {"title": "mine"}},
        ("/api/video/streams/{stream_id}", "DELETE"): {},
        ("/api/video/streams/{stream_id}/captions", "POST"): {"json": {
            "label": "x", "language": "en", "content": "WEBVTT\n\n00:01.000 --> 00:02.000\nx"}},
        ("/api/video/streams/{stream_id}/captions", "DELETE"): {"params": {"captionId": "c"}},
        ("/api/video/streams/{stream_id}/chapters", "PUT"): {"json": {"chapters": [
            {"title": "x", "start": 0}]}},
        ("/api/video/streams/{stream_id}/chapters", "DELETE"): {"params": {"chapterId": "c"}},
        ("/api/video/streams/{stream_id}/poster", "POST"): {"json": {"timeSeconds": 1}},
        ("/api/video/streams/{stream_id}/thumbnails", "GET"): {},
        ("/api/library/taxonomy/terms/{term_id}", "PATCH"): {"json": {"label": "mine"}},
        ("/api/library/taxonomy/terms/{term_id}", "DELETE"): {},
    }


def test_every_route_with_an_id_is_404_for_another_tenant(app_env: AppEnv, client: TestClient,
                                                           tenant: Tenant,
                                                           other_tenant: Tenant,
                                                           tmp_path: Path) -> None:
    ids = _owned_ids(app_env, client, tenant, tmp_path)
    calls = _calls(ids)
    with_ids = {(route.path, method) for route in ROUTES if isinstance(route, Route)
                and "{" in route.path for method in (route.methods or ()) if method != "HEAD"}
    assert with_ids - TOKEN_ROUTES - PLAYBACK_ROUTES - NAME_ROUTES == set(calls), (
        "a route with an id has no isolation case")

    for (path, method), extra in calls.items():
        url = path.format(**ids)
        response = client.request(method, url, headers=other_tenant.headers, **extra)
        assert response.status_code == 404, (method, url, response.text)
        body = response.json()
        assert body["code"] == "NOT_FOUND", body
        for value in ids.values():
            assert value not in body.get("detail", ""), body

    # Ids in bodies and queries are the other tenant's too.
    zipped = client.post("/api/files/zip", headers=other_tenant.headers,
                         json={"ids": [ids["file_id"]]})
    assert zipped.status_code == 404, zipped.text
    listed = client.get("/api/files", headers=other_tenant.headers,
                        params={"folderId": ids["folder_id"]})
    assert listed.status_code == 404 or listed.json()["files"] == [], listed.text
    moved = client.post("/api/files", headers=other_tenant.headers,
                        files=[("file", ("x.jpg", images.jpeg(8, 8), "image/jpeg"))],
                        data={"folderId": ids["folder_id"]})
    assert moved.status_code == 404, moved.text
    for route in ("/api/jobs", "/api/files", "/api/folders", "/api/webhooks",
                  "/api/webhooks/deliveries", "/api/video/streams"):
        text = client.get(route, headers=other_tenant.headers).text
        assert not any(value in text for value in ids.values()), (route, text)

    # Nothing changed for the owner.
    assert client.get(f"/api/files/{ids['file_id']}",
                      headers=tenant.headers).json()["file"]["filename"] == "secret.jpg"
    assert client.get(f"/api/video/streams/{ids['stream_id']}", headers=tenant.headers
                      ).json()["stream"]["title"] == "private"
    assert client.get(f"/api/jobs/{ids['job_id']}",
                      headers=tenant.headers).json()["status"] == "completed"
    assert [w["id"] for w in client.get("/api/webhooks", headers=tenant.headers)
            .json()["webhooks"]] == [ids["webhook_id"]]
