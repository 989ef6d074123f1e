"""Helpers for the storage API tests: uploads, listings, folders and direct-upload PUTs, sent
the way Convertly's SDK storage client sends them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx2
from starlette.testclient import TestClient

from tests.api.support import Tenant

TEST_HOST = "http://testserver/"


def upload(client: TestClient, tenant: Tenant, name: str, data: bytes, *,
           content_type: str = "application/octet-stream",
           folder_id: str | None = None) -> dict[str, Any]:
    """POST /api/files with one file in `file`, as the SDK's files.upload does."""
    response = client.post(
        "/api/files", headers=tenant.headers,
        files=[("file", (name, data, content_type))],
        data={"folderId": folder_id} if folder_id else None,
    )
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()["file"]
    return record


def upload_many(client: TestClient, tenant: Tenant,
                files: Sequence[tuple[str, bytes]]) -> list[dict[str, Any]]:
    response = client.post(
        "/api/files", headers=tenant.headers,
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
    )
    assert response.status_code == 201, response.text
    records: list[dict[str, Any]] = response.json()["files"]
    return records


def list_files(client: TestClient, tenant: Tenant, path: str = "/api/files",
               **params: Any) -> dict[str, Any]:
    response = client.get(path, headers=tenant.headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def listed_ids(client: TestClient, tenant: Tenant, **params: Any) -> list[str]:
    return [f["id"] for f in list_files(client, tenant, limit=100, **params)["files"]]


def create_folder(client: TestClient, tenant: Tenant, name: str,
                  parent_id: str | None = None, **extra: Any) -> dict[str, Any]:
    response = client.post("/api/folders", headers=tenant.headers,
                           json={"name": name, "parentId": parent_id, **extra})
    assert response.status_code == 201, response.text
    folder: dict[str, Any] = response.json()["folder"]
    return folder


def fetch(client: TestClient, url: str) -> httpx2.Response:
    """GET a signed link: this app's through the in-process client, others over HTTP."""
    response = client.get(url) if url.startswith(TEST_HOST) else httpx2.get(url, timeout=30)
    assert response.status_code == 200, response.text
    return response


def put_signed(client: TestClient, url: str, data: bytes,
               content_type: str = "application/octet-stream") -> httpx2.Response:
    """PUT bytes to a direct-upload URL as the SDK does: over HTTP to the S3 server, or
    through the in-process client when the URL is this app's own upload route."""
    headers = {"Content-Type": content_type}
    if url.startswith(TEST_HOST):
        return client.put(url, content=data, headers=headers)
    return httpx2.put(url, content=data, headers=headers, timeout=30)


def start_upload(client: TestClient, tenant: Tenant, filename: str, size: int, *,
                 content_type: str = "application/octet-stream",
                 folder_id: str | None = None) -> dict[str, Any]:
    """POST /api/uploads with the body the SDK's uploads.createSession sends."""
    response = client.post("/api/uploads", headers=tenant.headers, json={
        "filename": filename, "contentType": content_type, "sizeBytes": size,
        "folderId": folder_id, "resumable": True})
    assert response.status_code == 200, response.text
    session: dict[str, Any] = response.json()
    return session
