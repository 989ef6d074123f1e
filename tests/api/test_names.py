"""Upload names: every route that takes a file holds its name to the one rule
(`convertly.filenames`) before the body is read; a job's bundle keeps every output's name
and extension, in zip, tar and 7z."""

from __future__ import annotations

import io
import tarfile
import zipfile

import py7zr
import pytest
from starlette.testclient import TestClient

from tests import images
from tests.api.support import Tenant, create_job, download, wait_for_job
from tests.hostile.corpus import multipart

ROUTES = {
    "/api/jobs": [("format", None, b"webp")],
    "/api/convert": [("format", None, b"webp")],
    "/api/compress": [],
    "/api/files": [],
}


def _send(client: TestClient, tenant: Tenant, path: str, names: list[str]
          ) -> tuple[int, dict[str, object]]:
    field = "file" if path == "/api/files" else "files"
    parts = [*ROUTES[path], *[(field, name, images.png(16, 16)) for name in names]]
    body, content_type = multipart(parts)
    response = client.post(path, content=body,
                           headers={**tenant.headers, "Content-Type": content_type})
    return response.status_code, response.json()


@pytest.mark.parametrize("path", sorted(ROUTES))
@pytest.mark.parametrize("name", ["a\x00b.png", "photo\u202egnp.exe", "line\nbreak.png",
                                  "x" * 252 + ".png", ".."])
def test_every_upload_route_refuses_the_same_names(client: TestClient, tenant: Tenant,
                                                   path: str, name: str) -> None:
    status, body = _send(client, tenant, path, ["fine.png", name])
    assert (status, body["code"]) == (400, "INVALID_FIELD"), body
    field = "file" if path == "/api/files" else "files"
    assert body["detail"] == {"field": field, "fileIndex": 1}, body
    assert f"'{field}' (file 2)" in str(body["error"]), body


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_a_path_gives_its_last_segment_and_an_empty_name_a_default(
        client: TestClient, tenant: Tenant, path: str) -> None:
    status, body = _send(client, tenant, path, ["../../etc/passwd.png", "C:\\docs\\b.png", ""])
    assert status in (200, 201), body
    if path == "/api/jobs":
        job = wait_for_job(client, tenant, str(body["jobId"]))
        names = [r["filename"] for r in job["results"]]
    else:  # the stored records, or the converted outputs (named after their sources)
        names = [f["filename"] for f in body["files"]]  # type: ignore[attr-defined]
    assert [n.rsplit(".", 1)[0] for n in names] == ["passwd", "b", "file-3"], names


def _entries(data: bytes, fmt: str) -> list[str]:
    if fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return zf.namelist()
    if fmt == "7z":
        with py7zr.SevenZipFile(io.BytesIO(data)) as archive:
            return archive.getnames()
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return tf.getnames()


@pytest.mark.parametrize("fmt", ["zip", "tar", "7z"])
def test_a_bundle_keeps_every_name_and_extension(client: TestClient, tenant: Tenant,
                                                 fmt: str) -> None:
    long = "é" * 200 + ".png"  # 405 bytes of UTF-8: over what a file system holds
    uploads = [("a.png", images.png(20, 10, seed=1)), ("A.gif", images.png(21, 10, seed=2)),
               ("a (2).jpg", images.png(22, 10, seed=3)), ("a.bmp", images.png(23, 10, seed=4)),
               (long, images.png(24, 10, seed=5)), (long, images.png(25, 10, seed=6))]
    job_id = create_job(client, tenant, uploads, format="webp", createArchive=True,
                        archiveFormat=fmt)
    job = wait_for_job(client, tenant, job_id)
    assert job["completedFiles"] == len(uploads), job
    names = _entries(download(client, job["archive"]["downloadUrl"]).content, fmt)
    assert len(names) == len(uploads)
    assert len({n.casefold() for n in names}) == len(uploads), names
    assert all(n.endswith(".webp") for n in names), names
    assert all(len(n.encode()) <= 255 for n in names), names
    assert names[:4] == ["a.webp", "A (2).webp", "a (2) (2).webp", "a (3).webp"], names
    assert names[4].startswith("é" * 100) and names[5].endswith(" (2).webp"), names
