"""API keys and tenant isolation."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests import images
from tests.api.support import (
    AppEnv,
    Tenant,
    assert_error,
    convert_ok,
    create_job,
    download,
    get_job,
    list_jobs,
    post,
    store_job,
    wait_for_job,
)


def test_missing_key_is_401(client: TestClient, jpeg_bytes: bytes) -> None:
    body = assert_error(client.get("/api/jobs"), 401, "UNAUTHORIZED", "API key")
    assert body.keys() == {"error", "code"}
    response = post(client, "/api/convert", None, [("a.jpg", jpeg_bytes)], format="png")
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer cvly_" + "x" * 43},
        {"Authorization": "Bearer not-a-convertly-key"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"x-api-key": "cvly_" + "y" * 43},
        {"x-api-key": ""},
    ],
    ids=["unknown-bearer", "foreign-bearer", "empty-bearer", "basic", "unknown-header",
         "empty-header"],
)
def test_wrong_key_is_401(client: TestClient, headers: dict[str, str]) -> None:
    assert_error(client.get("/api/jobs", headers=headers), 401, "UNAUTHORIZED")


def test_a_real_key_with_a_changed_character_is_401(client: TestClient,
                                                    tenant: Tenant) -> None:
    altered = tenant.key[:-1] + ("A" if tenant.key[-1] != "A" else "B")
    response = client.get("/api/jobs", headers={"Authorization": f"Bearer {altered}"})
    assert_error(response, 401, "UNAUTHORIZED")


def test_revoked_key_is_401(app_env: AppEnv, client: TestClient, tenant: Tenant) -> None:
    assert client.get("/api/jobs", headers=tenant.headers).status_code == 200
    app_env.services.keys.revoke(tenant.prefix)
    assert_error(client.get("/api/jobs", headers=tenant.headers), 401, "UNAUTHORIZED",
                 "revoked")


@pytest.mark.parametrize(
    ("header", "template"),
    [("Authorization", "Bearer {key}"), ("Authorization", "bearer {key}"),
     ("x-api-key", "{key}")],
    ids=["bearer", "bearer-lowercase", "x-api-key"],
)
def test_both_key_headers_work(client: TestClient, tenant: Tenant, jpeg_bytes: bytes,
                               header: str, template: str) -> None:
    headers = {header: template.format(key=tenant.key)}
    response = client.post("/api/convert", headers=headers,
                           files=[("files", ("a.jpg", jpeg_bytes, "image/jpeg"))],
                           data={"format": "png"})
    assert response.status_code == 200, response.text
    assert response.json()["files"][0]["mimeType"] == "image/png"


def test_keys_of_one_tenant_share_its_jobs(app_env: AppEnv, client: TestClient,
                                           tenant: Tenant, jpeg_bytes: bytes) -> None:
    key, _ = app_env.services.keys.create("second key", tenant=tenant.tenant)
    job_id = create_job(client, tenant, [("a.jpg", jpeg_bytes)], format="png")
    response = client.get(f"/api/jobs/{job_id}", headers={"x-api-key": key})
    assert response.status_code == 200


def test_other_tenants_cannot_see_or_cancel_a_job(client: TestClient, tenant: Tenant,
                                                  other_tenant: Tenant,
                                                  jpeg_bytes: bytes) -> None:
    job_id = create_job(client, tenant, [("a.jpg", jpeg_bytes)], format="png")
    wait_for_job(client, tenant, job_id)

    assert_error(client.get(f"/api/jobs/{job_id}", headers=other_tenant.headers), 404,
                 "NOT_FOUND")
    assert_error(client.delete(f"/api/jobs/{job_id}", headers=other_tenant.headers), 404,
                 "NOT_FOUND")
    theirs = list_jobs(client, other_tenant)
    assert theirs["jobs"] == [] and theirs["pagination"]["total"] == 0
    assert get_job(client, tenant, job_id)["status"] == "completed"


def test_other_tenants_cannot_cancel_a_pending_job(app_env: AppEnv, client: TestClient,
                                                   tenant: Tenant, other_tenant: Tenant,
                                                   tmp_path: Path) -> None:
    job = store_job(app_env.services, tenant, [("a.jpg", images.jpeg(64, 48))], tmp_path)
    assert_error(client.delete(f"/api/jobs/{job.id}", headers=other_tenant.headers), 404,
                 "NOT_FOUND")
    assert get_job(client, tenant, job.id)["status"] == "pending"
    assert list_jobs(client, other_tenant, status="pending")["jobs"] == []


def _payload(token: str) -> list[object]:
    payload = token.partition(".")[0]
    data: list[object] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload)
                                                                                % 4)))
    return data


def _with_payload(token: str, values: list[object]) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    payload = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return f"{payload}.{token.partition('.')[2]}"


def test_a_download_link_cannot_be_pointed_at_another_file(client: TestClient,
                                                           tenant: Tenant,
                                                           other_tenant: Tenant) -> None:
    mine = convert_ok(client, tenant, [("mine.jpg", images.jpeg(80, 60))], format="png",
                      saveToStorage=True)["files"][0]
    theirs = convert_ok(client, other_tenant, [("theirs.jpg", images.jpeg(60, 80))],
                        format="png", saveToStorage=True)["files"][0]
    base, _, my_token = mine["downloadUrl"].rpartition("/")
    their_token = theirs["downloadUrl"].rpartition("/")[2]
    my_values, their_values = _payload(my_token), _payload(their_token)
    assert my_values[0] != their_values[0]  # the storage key

    # Another tenant's storage key, or another tenant, under my signature.
    stolen_key = _with_payload(my_token, [their_values[0], *my_values[1:]])
    assert_error(client.get(f"{base}/{stolen_key}"), 403, "FORBIDDEN")
    other_owner = _with_payload(my_token, [my_values[0], their_values[1], *my_values[2:]])
    assert_error(client.get(f"{base}/{other_owner}"), 403, "FORBIDDEN")
    # A longer life under the same signature.
    later = _with_payload(my_token, [*my_values[:4], int(str(my_values[4])) + 86_400])
    assert_error(client.get(f"{base}/{later}"), 403, "FORBIDDEN")

    # Both genuine links still serve their own file.
    assert images.decode(download(client, mine["downloadUrl"]).content).size == (80, 60)
    assert images.decode(download(client, theirs["downloadUrl"]).content).size == (60, 80)
