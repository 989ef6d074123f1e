"""The storage API's files: upload, list, search, get and download, rename and move, delete,
zip, saveToStorage outputs, and tenant isolation. Every test runs in both modes."""

from __future__ import annotations

import io
import re
import time
import zipfile
from datetime import datetime
from typing import Any

import httpx2
from starlette.testclient import TestClient

from convertly import library
from convertly.state.records import FileQuery
from tests import images
from tests.api.library_support import (
    create_folder,
    fetch,
    list_files,
    listed_ids,
    upload,
    upload_many,
)
from tests.api.support import (
    AppEnv,
    Tenant,
    assert_error,
    convert_ok,
    create_job,
    services_for,
    wait_for_job,
)

RECORD_FIELDS = {"id", "filename", "mime_type", "size_bytes", "folder_id", "cdn_slug", "width",
                 "height", "duration", "metadata", "created_at", "download_url",
                 "downloadUrl", "expiresIn"}


def test_upload_get_and_download(app_env: AppEnv, client: TestClient, tenant: Tenant) -> None:
    photo = images.jpeg(160, 120)
    # The claimed type is generic: the content decides.
    record = upload(client, tenant, "holiday photo.jpg", photo)
    assert set(record) == RECORD_FIELDS
    assert re.fullmatch(r"file_[0-9a-f]{24}", record["id"])
    assert (record["filename"], record["mime_type"]) == ("holiday photo.jpg", "image/jpeg")
    assert (record["size_bytes"], record["width"], record["height"]) == (len(photo), 160, 120)
    assert record["folder_id"] is None
    assert record["metadata"] == {"tags": [], "description": None, "jobId": None,
                                  "pageCount": None}
    created = datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))
    assert abs(created.timestamp() - time.time()) < 60

    response = client.get(f"/api/files/{record['id']}", headers={
        **tenant.headers, "Accept": "application/json"})
    assert response.status_code == 200
    got = response.json()["file"]
    assert got["id"] == record["id"]
    assert got["expiresIn"] == app_env.settings.download_url_ttl
    assert got["download_url"] == got["downloadUrl"]
    downloaded = fetch(client, got["download_url"])
    assert downloaded.content == photo
    assert downloaded.headers["content-type"] == "image/jpeg"
    assert "holiday" in downloaded.headers["content-disposition"]
    assert images.decode(downloaded.content).size == (160, 120)


def test_upload_several_files_and_types(client: TestClient, tenant: Tenant) -> None:
    records = upload_many(client, tenant, [
        ("a.png", images.png(30, 40)), ("notes.txt", b"plain text\n"),
        ("data.bin", b"\x00\x01\x02\x03")])
    assert [r["filename"] for r in records] == ["a.png", "notes.txt", "data.bin"]
    assert [r["mime_type"] for r in records] == ["image/png", "text/plain",
                                                 "application/octet-stream"]
    assert (records[0]["width"], records[0]["height"]) == (30, 40)
    assert records[1]["width"] is None
    # A type the client claims is kept when the content is not one we recognise.
    claimed = upload(client, tenant, "report", b"{\"a\": 1}", content_type="application/json")
    assert claimed["mime_type"] == "application/json"

    empty = client.post("/api/files", headers=tenant.headers,
                        files=[("file", ("empty.png", b"", "image/png"))])
    assert_error(empty, 400, "INVALID_FIELD", "empty.png is empty")
    nothing = client.post("/api/files", headers=tenant.headers, data={"folderId": "x"},
                          files=[("other", ("a.png", b"x", "image/png"))])
    assert_error(nothing, 400, "INVALID_FIELD", "'other'")
    not_multipart = client.post("/api/files", headers=tenant.headers, json={"file": "x"})
    assert_error(not_multipart, 400, "INVALID_REQUEST", "multipart/form-data")
    unknown_folder = client.post("/api/files", headers=tenant.headers,
                                 data={"folderId": "fld_nope"},
                                 files=[("file", ("a.png", images.png(4, 4), "image/png"))])
    assert_error(unknown_folder, 404, "NOT_FOUND", "fld_nope")


def test_list_pages_newest_first(client: TestClient, tenant: Tenant) -> None:
    names = [f"page-{i}.png" for i in range(5)]
    ids = [upload(client, tenant, name, images.png(8 + i, 8))["id"] for i, name in
           enumerate(names)]
    newest_first = ids[::-1]
    seen = []
    for offset in (0, 2, 4):
        body = list_files(client, tenant, limit=2, offset=offset)
        assert body["pagination"] == {"limit": 2, "offset": offset, "total": 5,
                                      "hasMore": offset + 2 < 5}
        seen += [f["id"] for f in body["files"]]
    assert seen == newest_first
    assert list_files(client, tenant)["pagination"]["limit"] == 20
    assert list_files(client, tenant, offset=10)["files"] == []
    assert listed_ids(client, tenant, folderId="null") == newest_first


def test_list_filters_by_name_and_type(client: TestClient, tenant: Tenant) -> None:
    photo = upload(client, tenant, "Été Photo.JPG", images.jpeg(40, 30))
    drawing = upload(client, tenant, "drawing.png", images.png(30, 40))
    text = upload(client, tenant, "photo-notes.txt", b"hello\n")
    assert set(listed_ids(client, tenant, q="photo")) == {photo["id"], text["id"]}
    assert listed_ids(client, tenant, q="ÉTÉ") == [photo["id"]]  # Unicode-aware, any case
    assert listed_ids(client, tenant, q="100%_") == []  # no wildcards
    assert set(listed_ids(client, tenant, mimePrefix="image/")) == {photo["id"], drawing["id"]}
    assert listed_ids(client, tenant, mimePrefix="image/png") == [drawing["id"]]
    assert listed_ids(client, tenant, mimePrefix="text") == [text["id"]]
    assert listed_ids(client, tenant, q="photo", mimePrefix="image/") == [photo["id"]]
    body = list_files(client, tenant, q="photo", limit=1)
    assert body["pagination"] == {"limit": 1, "offset": 0, "total": 2, "hasMore": True}

    bad = {
        "limit": ("0", "'limit'"), "offset": ("-1", "'offset'"),
        "mimePrefix": ("image/*;x", "'mimePrefix'"), "q": ("x" * 201, "'q'"),
    }
    for name, (value, fragment) in bad.items():
        response = client.get("/api/files", headers=tenant.headers, params={name: value})
        body = assert_error(response, 400, "INVALID_FIELD", fragment)
        assert body["detail"]["field"] == name
    assert_error(client.get("/api/files", headers=tenant.headers, params={"limit": "abc"}),
                 400, "INVALID_FIELD", "'limit'")
    assert_error(client.get("/api/files", headers=tenant.headers,
                            params={"folderId": "fld_missing"}), 404, "NOT_FOUND")


def test_search_by_text_tags_and_orientation(client: TestClient, tenant: Tenant) -> None:
    tall = upload(client, tenant, "tall.png", images.png(20, 40))
    wide = upload(client, tenant, "wide.jpg", images.jpeg(40, 20))
    square = upload(client, tenant, "square.png", images.png(25, 25))
    for record, tags in ((tall, ["Beach", "summer"]), (wide, ["beach"]), (square, ["city"])):
        response = client.patch(f"/api/files/{record['id']}", headers=tenant.headers,
                                json={"tags": tags, "description": f"{record['filename']}!"})
        assert response.status_code == 200, response.text
        assert response.json()["file"]["metadata"]["tags"] == tags

    def search(**params: str) -> list[str]:
        body = list_files(client, tenant, "/api/files/search", **params)
        return sorted(f["filename"] for f in body["files"])

    assert search(tags="BEACH") == ["tall.png", "wide.jpg"]
    assert search(tags="beach,summer", tagMode="all") == ["tall.png"]
    assert search(tags="summer,city") == ["square.png", "tall.png"]
    assert search(orientation="vertical") == ["tall.png"]
    assert search(orientation="horizontal", mimePrefix="image/") == ["wide.jpg"]
    assert search(orientation="square") == ["square.png"]
    assert search(q="D", tags="beach", orientation="horizontal") == ["wide.jpg"]
    body = list_files(client, tenant, "/api/files/search", q="png", folderId="null",
                      tags="city", limit=5)
    assert body["pagination"] == {"limit": 5, "offset": 0, "total": 1, "hasMore": False}
    assert body["applied"] == {"q": "png", "tags": ["city"], "tagMode": "any",
                               "orientation": None, "folderId": "null", "mimePrefix": None,
                               "locale": "en"}
    assert body["files"][0]["metadata"]["description"] == "square.png!"
    assert_error(client.get("/api/files/search", headers=tenant.headers,
                            params={"orientation": "diagonal"}), 400, "INVALID_FIELD",
                 "'orientation'")
    assert_error(client.get("/api/files/search", headers=tenant.headers,
                            params={"tagMode": "some"}), 400, "INVALID_FIELD", "'tagMode'")


def test_rename_and_move(client: TestClient, tenant: Tenant) -> None:
    record = upload(client, tenant, "draft.png", images.png(12, 10))
    folder = create_folder(client, tenant, "Finals")
    url = f"/api/files/{record['id']}"
    response = client.patch(url, headers=tenant.headers,
                            json={"filename": "final.png", "folderId": folder["id"]})
    assert response.status_code == 200, response.text
    moved = response.json()["file"]
    assert (moved["filename"], moved["folder_id"]) == ("final.png", folder["id"])
    assert listed_ids(client, tenant, folderId=folder["id"]) == [record["id"]]
    assert listed_ids(client, tenant, folderId="null") == []
    assert listed_ids(client, tenant) == [record["id"]]
    downloaded = fetch(client, moved["download_url"])
    assert 'filename="final.png"' in downloaded.headers["content-disposition"]
    assert images.decode(downloaded.content).size == (12, 10)

    # The SDK's update sends only the fields it was given: the folder stays.
    renamed = client.patch(url, headers=tenant.headers, json={"filename": "v2.png"})
    assert renamed.json()["file"]["folder_id"] == folder["id"]
    back = client.patch(url, headers=tenant.headers, json={"folderId": None})
    assert back.json()["file"]["folder_id"] is None
    assert listed_ids(client, tenant, folderId=folder["id"]) == []
    assert listed_ids(client, tenant, folderId="null") == [record["id"]]

    def patch(body: Any) -> httpx2.Response:
        return client.patch(url, headers=tenant.headers, json=body)

    assert_error(patch({"folderId": "fld_nope"}), 404, "NOT_FOUND", "fld_nope")
    assert_error(patch({"filename": "a/b.png"}), 400, "INVALID_FIELD", "'filename'")
    assert_error(patch({"filename": ""}), 400, "INVALID_FIELD", "'filename'")
    assert_error(patch({"folder": "x"}), 400, "INVALID_FIELD", "'folder'")
    assert_error(patch({"cdnSlug": "my-slug"}), 400, "INVALID_FIELD", "'cdnSlug'")
    assert_error(patch({"tags": "beach"}), 400, "INVALID_FIELD", "'tags'")
    assert_error(patch([1, 2]), 400, "INVALID_REQUEST", "JSON object")
    bad_json = client.patch(url, headers={**tenant.headers, "Content-Type": "application/json"},
                            content=b"{not json")
    assert_error(bad_json, 400, "INVALID_REQUEST", "JSON object")
    assert_error(client.patch("/api/files/file_0", headers=tenant.headers,
                              json={"filename": "x.png"}), 404, "NOT_FOUND")
    # Nothing above changed the file.
    assert client.get(url, headers=tenant.headers).json()["file"]["filename"] == "v2.png"


def test_delete(client: TestClient, tenant: Tenant) -> None:
    keep = upload(client, tenant, "keep.png", images.png(6, 6))
    gone = upload(client, tenant, "gone.png", images.png(7, 7))
    response = client.delete(f"/api/files/{gone['id']}", headers=tenant.headers)
    assert response.status_code == 200
    assert response.json() == {"success": True, "message": "File deleted."}
    assert_error(client.get(f"/api/files/{gone['id']}", headers=tenant.headers),
                 404, "NOT_FOUND")
    assert client.get(gone["download_url"]).status_code == 404
    assert listed_ids(client, tenant) == [keep["id"]]
    assert_error(client.delete(f"/api/files/{gone['id']}", headers=tenant.headers),
                 404, "NOT_FOUND")


def test_zip_of_files(client: TestClient, tenant: Tenant) -> None:
    photo = images.jpeg(64, 48)
    first = upload(client, tenant, "a.jpg", photo)
    twin = upload(client, tenant, "a.jpg", images.jpeg(32, 24))
    text = upload(client, tenant, "notes.txt", b"note " * 200)
    response = client.post("/api/files/zip", headers=tenant.headers, json={
        "ids": [first["id"], twin["id"], text["id"], first["id"]], "filename": "bundle"})
    assert response.status_code == 200, response.text
    out = response.json()["zip"]
    assert out["filename"] == "bundle.zip"
    assert out["entries"] == ["a.jpg", "a (2).jpg", "notes.txt"]
    assert out["fileCount"] == 3
    data = fetch(client, out["download_url"]).content
    assert len(data) == out["size_bytes"]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == ["a.jpg", "a (2).jpg", "notes.txt"]
        assert zf.read("a.jpg") == photo
        assert images.decode(zf.read("a (2).jpg")).size == (32, 24)
        assert zf.read("notes.txt") == b"note " * 200
        # JPEG data is stored as it is; text is deflated.
        assert zf.getinfo("a.jpg").compress_type == zipfile.ZIP_STORED
        assert zf.getinfo("notes.txt").compress_type == zipfile.ZIP_DEFLATED
    # The zip is not one of the tenant's files.
    assert set(listed_ids(client, tenant)) == {first["id"], twin["id"], text["id"]}

    def zip_ids(body: Any) -> httpx2.Response:
        return client.post("/api/files/zip", headers=tenant.headers, json=body)

    assert_error(zip_ids({"ids": [first["id"], "file_missing"]}), 404, "NOT_FOUND",
                 "file_missing")
    assert_error(zip_ids({"ids": []}), 400, "INVALID_FIELD", "'ids'")
    assert_error(zip_ids({"ids": [1]}), 400, "INVALID_FIELD", "'ids'")
    assert_error(zip_ids({}), 400, "INVALID_FIELD", "'ids'")


def test_save_to_storage_outputs_are_listed(client: TestClient, tenant: Tenant) -> None:
    body = convert_ok(client, tenant, [("kept.jpg", images.jpeg(120, 90))], format="png",
                      saveToStorage=True)
    stored_id = body["files"][0]["storedFileId"]
    convert_ok(client, tenant, [("not-kept.jpg", images.jpeg(40, 30))], format="png")
    files = {f["filename"]: f for f in list_files(client, tenant)["files"]}
    # The output and its saved source; nothing of the conversion that was not saved.
    assert set(files) == {"kept.png", "kept.jpg"}
    output = files["kept.png"]
    assert output["id"] == stored_id
    assert (output["mime_type"], output["width"], output["height"]) == ("image/png", 120, 90)
    assert images.decode(fetch(client, output["download_url"]).content).size == (120, 90)

    # Job outputs are recorded by the worker (another process in distributed mode).
    job = wait_for_job(client, tenant, create_job(
        client, tenant, [("j1.jpg", images.jpeg(50, 40)), ("j2.png", images.png(40, 50))],
        formats=["webp", "jpg"]))
    assert job["status"] == "completed", job
    listed = {f["id"]: f for f in list_files(client, tenant, limit=100)["files"]}
    for result in job["results"]:
        entry = listed[result["storedFileId"]]
        assert entry["filename"] == result["outputFilename"]
        assert entry["metadata"]["jobId"] == job["jobId"]
        decoded = images.decode(fetch(client, entry["download_url"]).content)
        assert decoded.size == (result["width"], result["height"])
    webp = listed_ids(client, tenant, mimePrefix="image/webp")
    assert webp == [job["results"][0]["storedFileId"]]


def test_tenants_never_see_each_others_files(client: TestClient, tenant: Tenant,
                                             other_tenant: Tenant) -> None:
    mine = upload(client, tenant, "mine.png", images.png(9, 9))
    folder = create_folder(client, tenant, "Mine")
    theirs = upload(client, other_tenant, "theirs.png", images.png(5, 5))
    assert listed_ids(client, other_tenant) == [theirs["id"]]
    assert listed_ids(client, tenant) == [mine["id"]]
    assert [f["id"] for f in list_files(client, other_tenant, "/api/files/search",
                                        q="png")["files"]] == [theirs["id"]]
    as_other = other_tenant.headers
    file_url = f"/api/files/{mine['id']}"
    for response in (
        client.get(file_url, headers=as_other),
        client.patch(file_url, headers=as_other, json={"filename": "stolen.png"}),
        client.delete(file_url, headers=as_other),
        client.post("/api/files/zip", headers=as_other, json={"ids": [mine["id"]]}),
        client.get("/api/files", headers=as_other, params={"folderId": folder["id"]}),
        client.patch(f"/api/files/{theirs['id']}", headers=as_other,
                     json={"folderId": folder["id"]}),
    ):
        assert_error(response, 404, "NOT_FOUND")
        assert "mine.png" not in response.text
    # Still there, unchanged.
    got = client.get(file_url, headers=tenant.headers).json()["file"]
    assert got["filename"] == "mine.png"
    assert_error(client.get("/api/files"), 401, "UNAUTHORIZED")
    assert_error(client.get(file_url, headers={"Authorization": "Bearer cvly_wrong"}),
                 401, "UNAUTHORIZED")


def test_malformed_requests_are_clear_400s(client: TestClient, tenant: Tenant) -> None:
    json_headers = {**tenant.headers, "Content-Type": "application/json"}
    for path in ("/api/files?limit=%C2%B2", "/api/files/search?offset=%C2%B2",
                 "/api/jobs?limit=%C2%B2"):  # "²".isdigit() is True; int("²") fails
        assert_error(client.get(path, headers=tenant.headers), 400, "INVALID_FIELD")
    for method, path, body in (
        ("PATCH", "/api/files/file_x", b"[" * 50_000 + b"]" * 50_000),
        ("POST", "/api/folders", b'{"name": "\\ud800"}'),
        ("POST", "/api/uploads", b'{"filename": "a\\udfff.bin", "sizeBytes": 3}'),
        ("POST", "/api/files/zip", b'{"ids": ["\\ud800"]}'),
    ):
        response = client.request(method, path, headers=json_headers, content=body)
        assert_error(response, 400, "INVALID_REQUEST", "JSON object")
    too_big = client.post("/api/folders", headers=json_headers,
                          content=b'{"name": "' + b"x" * 300_000 + b'"}')
    assert_error(too_big, 413, "PAYLOAD_TOO_LARGE")


def test_another_api_replica_sees_the_same_files(app_env: AppEnv, client: TestClient,
                                                 tenant: Tenant) -> None:
    """A second set of services on the same settings (another API process or host: the
    same SQLite file, or the same Redis) sees what this one stored, and the other way round."""
    replica = services_for(app_env.mode, app_env.settings)
    record = upload(client, tenant, "shared.png", images.png(10, 10))
    found, total = library.list_files(replica, tenant.tenant, FileQuery(), limit=10, offset=0)
    assert ([r.id for r in found], total) == ([record["id"]], 1)
    folder = library.create_folder(replica, tenant.tenant, name="From the replica",
                                   color=None, parent_id=None)
    library.update_file(replica, tenant.tenant, record["id"], {"folder_id": folder.id})
    assert listed_ids(client, tenant, folderId=folder.id) == [record["id"]]
    names = [f["name"] for f in client.get("/api/folders", headers=tenant.headers).json()[
        "folders"]]
    assert names == ["From the replica"]
