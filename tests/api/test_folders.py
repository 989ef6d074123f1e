"""The storage API's folders: create, list, rename, move, delete (409 when not empty unless
recursive) and tenant isolation. Every test runs in both modes."""

from __future__ import annotations

import re
from typing import Any

import httpx2
from starlette.testclient import TestClient

from tests import images
from tests.api.library_support import create_folder, listed_ids, upload
from tests.api.support import Tenant, assert_error


def _folders(client: TestClient, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/folders", headers=tenant.headers, params=params)
    assert response.status_code == 200, response.text
    folders: list[dict[str, Any]] = response.json()["folders"]
    return folders


def _names(client: TestClient, tenant: Tenant, **params: Any) -> list[str]:
    return [f["name"] for f in _folders(client, tenant, **params)]


def test_create_list_rename_and_move(client: TestClient, tenant: Tenant) -> None:
    photos = create_folder(client, tenant, "Photos", color="#FF8800")
    assert set(photos) == {"id", "name", "color", "parent_id", "created_at"}
    assert re.fullmatch(r"fld_[0-9a-f]{24}", photos["id"])
    assert (photos["name"], photos["color"], photos["parent_id"]) == ("Photos", "#ff8800", None)
    archive = create_folder(client, tenant, "archive")
    assert archive["color"] == "#64748b"  # the default
    summer = create_folder(client, tenant, "Summer", parent_id=photos["id"])
    assert summer["parent_id"] == photos["id"]

    assert _names(client, tenant) == ["archive", "Photos", "Summer"]  # by name, any case
    assert _names(client, tenant, parentId="null") == ["archive", "Photos"]
    assert _names(client, tenant, parentId=photos["id"]) == ["Summer"]
    assert _names(client, tenant, q="MM") == ["Summer"]

    url = f"/api/folders/{summer['id']}"
    response = client.patch(url, headers=tenant.headers,
                            json={"name": "Summer 2026", "parentId": archive["id"]})
    assert response.status_code == 200, response.text
    moved = response.json()["folder"]
    assert (moved["name"], moved["parent_id"], moved["color"]) == (
        "Summer 2026", archive["id"], summer["color"])
    assert _names(client, tenant, parentId=archive["id"]) == ["Summer 2026"]
    assert _names(client, tenant, parentId=photos["id"]) == []
    # The SDK's update sends parentId only when given: a rename keeps the parent.
    renamed = client.patch(url, headers=tenant.headers, json={"name": "S"}).json()["folder"]
    assert renamed["parent_id"] == archive["id"]
    top = client.patch(url, headers=tenant.headers, json={"parentId": None}).json()["folder"]
    assert top["parent_id"] is None

    # A folder cannot go inside itself or below itself.
    client.patch(f"/api/folders/{archive['id']}", headers=tenant.headers,
                 json={"parentId": photos["id"]})
    for target in (photos["id"], archive["id"]):
        response = client.patch(f"/api/folders/{photos['id']}", headers=tenant.headers,
                                json={"parentId": target})
        assert_error(response, 400, "INVALID_FIELD", "'parentId'", "inside itself")


def test_bad_folder_input(client: TestClient, tenant: Tenant) -> None:
    def create(body: Any) -> httpx2.Response:
        return client.post("/api/folders", headers=tenant.headers, json=body)

    assert_error(create({"name": ""}), 400, "INVALID_FIELD", "'name'")
    assert_error(create({"color": "#fff"}), 400, "INVALID_FIELD", "'name'")
    assert_error(create({"name": "a/b"}), 400, "INVALID_FIELD", "'name'")
    assert_error(create({"name": "x" * 256}), 400, "INVALID_FIELD", "255")
    assert_error(create({"name": "x", "color": "red"}), 400, "INVALID_FIELD", "'color'")
    assert_error(create({"name": "x", "parentId": "fld_nope"}), 404, "NOT_FOUND", "fld_nope")
    assert_error(create({"name": "x", "icon": "star"}), 400, "INVALID_FIELD", "'icon'")
    assert_error(create("x"), 400, "INVALID_REQUEST", "JSON object")
    assert_error(client.get("/api/folders", headers=tenant.headers,
                            params={"parentId": "fld_nope"}), 404, "NOT_FOUND")
    assert_error(client.patch("/api/folders/fld_nope", headers=tenant.headers,
                              json={"name": "y"}), 404, "NOT_FOUND")
    assert_error(client.delete("/api/folders/fld_nope", headers=tenant.headers),
                 404, "NOT_FOUND")
    folder = create_folder(client, tenant, "ok")
    assert_error(client.delete(f"/api/folders/{folder['id']}", headers=tenant.headers,
                               params={"recursive": "maybe"}), 400, "INVALID_FIELD",
                 "'recursive'")
    assert _names(client, tenant) == ["ok"]


def test_delete_refuses_a_non_empty_folder_unless_recursive(client: TestClient,
                                                             tenant: Tenant) -> None:
    top = create_folder(client, tenant, "Top")
    child = create_folder(client, tenant, "Child", parent_id=top["id"])
    grandchild = create_folder(client, tenant, "Grandchild", parent_id=child["id"])
    outside = create_folder(client, tenant, "Outside")
    in_top = upload(client, tenant, "top.png", images.png(5, 5), folder_id=top["id"])
    deep = upload(client, tenant, "deep.png", images.png(6, 6), folder_id=grandchild["id"])
    kept = upload(client, tenant, "kept.png", images.png(7, 7), folder_id=outside["id"])
    loose = upload(client, tenant, "loose.png", images.png(8, 8))

    body = assert_error(client.delete(f"/api/folders/{top['id']}", headers=tenant.headers),
                        409, "CONFLICT", "not empty", "recursive=true")
    assert body["detail"] == {"files": 1, "folders": 2}
    # Holding only a folder is not empty either.
    assert_error(client.delete(f"/api/folders/{child['id']}", headers=tenant.headers),
                 409, "CONFLICT")
    assert len(_folders(client, tenant)) == 4

    response = client.delete(f"/api/folders/{top['id']}", headers=tenant.headers,
                             params={"recursive": "true"})
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "deletedFiles": 2, "deletedFolders": 3,
                               "message": "Deleted 3 folder(s) and 2 file(s)."}
    assert _names(client, tenant) == ["Outside"]
    assert set(listed_ids(client, tenant)) == {kept["id"], loose["id"]}
    for gone in (in_top, deep):
        assert client.get(gone["download_url"]).status_code == 404
    assert client.get(kept["download_url"]).status_code == 200

    # An empty folder goes without `recursive`; its files were moved out first.
    client.patch(f"/api/files/{kept['id']}", headers=tenant.headers, json={"folderId": None})
    response = client.delete(f"/api/folders/{outside['id']}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json()["deletedFiles"] == 0
    assert _folders(client, tenant) == []
    assert set(listed_ids(client, tenant, folderId="null")) == {kept["id"], loose["id"]}


def test_tenants_never_see_each_others_folders(client: TestClient, tenant: Tenant,
                                               other_tenant: Tenant) -> None:
    mine = create_folder(client, tenant, "Private")
    create_folder(client, other_tenant, "Theirs")
    assert _names(client, other_tenant) == ["Theirs"]
    url = f"/api/folders/{mine['id']}"
    as_other = other_tenant.headers
    for response in (
        client.patch(url, headers=as_other, json={"name": "Taken"}),
        client.delete(url, headers=as_other, params={"recursive": "true"}),
        client.get("/api/folders", headers=as_other, params={"parentId": mine["id"]}),
        client.post("/api/folders", headers=as_other,
                    json={"name": "Inside", "parentId": mine["id"]}),
    ):
        assert_error(response, 404, "NOT_FOUND")
        assert "Private" not in response.text
    assert _names(client, tenant) == ["Private"]
    assert_error(client.get("/api/folders"), 401, "UNAUTHORIZED")
