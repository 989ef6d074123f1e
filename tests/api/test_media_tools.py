"""POST /api/media/{tool} and POST /api/files/{id}/tools, in both modes, through strip-metadata:
answered at once or queued as a job, the output's metadata gone and its pixels kept; the
errors a tool request can get."""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path
from typing import Any

from PIL import Image
from starlette.testclient import TestClient

from tests import images
from tests.api.support import (
    AppEnv,
    Tenant,
    assert_error,
    data_url_bytes,
    output_bytes,
    wait_for_job,
)

_MAKE = 0x010F


def _tagged_jpeg(width: int = 96, height: int = 64) -> bytes:
    exif = Image.Exif()
    exif[_MAKE] = "Private Camera Co"
    buffer = io.BytesIO()
    images.picture(width, height).save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def _tool(client: TestClient, tenant: Tenant, tool: str, upload: tuple[str, bytes] | None,
          **fields: str) -> Any:
    files = {"file": upload} if upload is not None else None
    return client.post(f"/api/media/{tool}", headers=tenant.headers, files=files,
                       data=fields)


def test_strip_metadata_answers_with_the_cleaned_file(client: TestClient,
                                                      tenant: Tenant) -> None:
    photo = _tagged_jpeg()
    response = _tool(client, tenant, "strip-metadata", ("photo.jpg", photo))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tool"] == "strip-metadata"
    [entry] = body["files"]
    assert (entry["filename"], entry["mimeType"], entry["format"]) == (
        "photo.jpg", "image/jpeg", "jpg")
    assert (entry["width"], entry["height"], entry["originalSize"]) == (96, 64, len(photo))
    data = output_bytes(client, entry)
    assert b"Private Camera Co" in photo and b"Private Camera Co" not in data
    assert entry["finalSize"] == len(data) < len(photo)
    with Image.open(io.BytesIO(data)) as cleaned, Image.open(io.BytesIO(photo)) as original:
        assert cleaned.tobytes() == original.tobytes()


def test_async_strip_metadata_is_a_job_on_the_media_queue(app_env: AppEnv, tenant: Tenant,
                                                          tmp_path: Path) -> None:
    client = app_env.client
    clip = tmp_path / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-t",
         "1", "-c:v", "libx264", "-preset", "ultrafast", "-metadata", "title=Our Street",
         str(clip)], check=True)
    def send() -> Any:
        return client.post("/api/media/strip-metadata",
                           headers={**tenant.headers, "Idempotency-Key": "clip-1"},
                           files={"file": ("clip.mp4", clip.read_bytes())},
                           data={"async": "true"})

    response = send()
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued.keys() == {"jobId", "status", "tool"}
    assert (queued["status"], queued["tool"]) == ("pending", "strip-metadata")
    again = send()  # the same request and key: the same job
    assert (again.status_code, again.headers["idempotent-replayed"]) == (200, "true")
    assert again.json()["jobId"] == queued["jobId"]

    job = wait_for_job(client, tenant, queued["jobId"])
    assert job["status"] == "completed", job
    assert (job["jobType"], job["tool"]) == ("tool", "strip-metadata")
    stored = app_env.services.jobs.get(queued["jobId"])
    assert stored is not None and stored.extra["families"] == ["media"]  # ffmpeg's workers
    [result] = job["results"]
    assert (result["outputFilename"], result["mimeType"]) == ("clip.mp4", "video/mp4")
    assert (result["width"], result["height"]) == (64, 48)
    data = output_bytes(client, result)
    assert b"Our Street" in clip.read_bytes() and b"Our Street" not in data


def test_thumbnail_runs_through_the_same_route(client: TestClient, tenant: Tenant) -> None:
    response = _tool(client, tenant, "thumbnail", ("wide.jpg", images.jpeg(400, 200)),
                     width="100", format="webp")
    assert response.status_code == 200, response.text
    [entry] = response.json()["files"]
    assert (entry["filename"], entry["width"], entry["height"]) == ("wide.webp", 100, 50)
    out = images.decode(output_bytes(client, entry))
    assert (out.format, out.size) == ("WEBP", (100, 50))
    assert_error(_tool(client, tenant, "thumbnail", ("wide.jpg", images.jpeg(40, 20)),
                       width="0"), 400, "INVALID_FIELD", "width")
    # `background` is async's alias when true or false, else the tool's colour option.
    padded = _tool(client, tenant, "thumbnail", ("wide.jpg", images.jpeg(400, 200)),
                   width="60", height="60", fit="contain", background="#00ff00", format="png")
    assert padded.status_code == 200, padded.text
    square = images.decode(output_bytes(client, padded.json()["files"][0]))
    assert square.size == (60, 60)
    assert square.image.convert("RGB").getpixel((30, 2)) == (0, 255, 0)
    queued = _tool(client, tenant, "thumbnail", ("wide.jpg", images.jpeg(40, 20)),
                   width="10", background="true")
    assert queued.status_code == 202, queued.text
    assert wait_for_job(client, tenant, queued.json()["jobId"])["status"] == "completed"


def test_a_stored_file_gets_its_output_beside_it_or_a_preview(client: TestClient,
                                                              tenant: Tenant) -> None:
    folder = client.post("/api/folders", headers=tenant.headers, json={"name": "Uploads"})
    assert folder.status_code == 201, folder.text
    folder_id = folder.json()["folder"]["id"]
    photo = _tagged_jpeg()
    stored = client.post("/api/files", headers=tenant.headers,
                         files={"file": ("photo.jpg", photo, "image/jpeg")},
                         data={"folderId": folder_id})
    assert stored.status_code == 201, stored.text
    file_id = stored.json()["file"]["id"]

    response = client.post(f"/api/files/{file_id}/tools", headers=tenant.headers,
                           json={"tool": "strip-metadata"})
    assert response.status_code == 200, response.text
    made = response.json()["file"]
    assert made["id"] != file_id and made["folder_id"] == folder_id
    assert (made["filename"], made["width"], made["height"]) == ("photo.jpg", 96, 64)
    assert b"Private Camera Co" not in client.get(made["downloadUrl"]).content

    preview = client.post(f"/api/files/{file_id}/tools", headers=tenant.headers,
                          json={"tool": "strip-metadata", "preview": True})
    assert preview.status_code == 200, preview.text
    shown = preview.json()["preview"]
    data = data_url_bytes(shown["dataUrl"], "image/jpeg")
    assert shown["sizeBytes"] == len(data) and b"Private Camera Co" not in data
    listed = client.get("/api/files", headers=tenant.headers).json()
    assert len(listed["files"]) == 2  # the source and the first run's output, no preview


def test_a_file_option_names_a_stored_file(client: TestClient, tenant: Tenant,
                                           other_tenant: Tenant) -> None:
    """watermark's `logo` as a stored file's id, on both routes; another tenant's id is a
    400 naming the field."""
    red = io.BytesIO()
    Image.new("RGB", (40, 40), (255, 0, 0)).save(red, "PNG")

    def store(owner: Tenant, name: str, data: bytes) -> str:
        response = client.post("/api/files", headers=owner.headers,
                               files={"file": (name, data)})
        assert response.status_code == 201, response.text
        file_id: str = response.json()["file"]["id"]
        return file_id

    logo = store(tenant, "logo.png", red.getvalue())
    grey = io.BytesIO()
    Image.new("RGB", (100, 60), (128, 128, 128)).save(grey, "PNG")
    mark = {"logo": logo, "position": "centre", "opacity": "1", "scale": "0.4"}

    response = _tool(client, tenant, "watermark", ("grey.png", grey.getvalue()), **mark)
    assert response.status_code == 200, response.text
    marked = images.decode(output_bytes(client, response.json()["files"][0]))
    assert marked.image.convert("RGB").getpixel((50, 30)) == (255, 0, 0)
    assert marked.image.convert("RGB").getpixel((5, 5)) == (128, 128, 128)

    photo = store(tenant, "grey.png", grey.getvalue())
    preview = client.post(f"/api/files/{photo}/tools", headers=tenant.headers,
                          json={"tool": "watermark", "params": mark, "preview": True})
    assert preview.status_code == 200, preview.text
    shown = images.decode(data_url_bytes(preview.json()["preview"]["dataUrl"], "image/png"))
    assert shown.image.convert("RGB").getpixel((50, 30)) == (255, 0, 0)

    # Queued with an uploaded logo and an Idempotency-Key: sent again, the same job.
    def queue() -> Any:
        return client.post("/api/media/watermark",
                           headers={**tenant.headers, "Idempotency-Key": "mark-1"},
                           files=[("file", ("grey.png", grey.getvalue())),
                                  ("logo", ("logo.png", red.getvalue()))],
                           data={"async": "true", "position": "centre", "opacity": "1"})

    first, second = queue(), queue()
    assert (first.status_code, second.status_code) == (202, 200), second.text
    assert first.json()["jobId"] == second.json()["jobId"]
    job = wait_for_job(client, tenant, first.json()["jobId"])
    assert job["status"] == "completed", job

    theirs = store(other_tenant, "logo.png", red.getvalue())
    assert_error(_tool(client, tenant, "watermark", ("grey.png", grey.getvalue()),
                       **{**mark, "logo": theirs}), 400, "INVALID_FIELD", "logo")


def test_tool_requests_are_refused_with_the_reason(client: TestClient, tenant: Tenant) -> None:
    photo = ("photo.jpg", images.jpeg(32, 24))
    assert_error(_tool(client, tenant, "no-such-tool", photo), 404, "NOT_FOUND",
                 "no-such-tool", "strip-metadata")
    assert_error(_tool(client, tenant, "strip-metadata", photo, colour="red"), 400,
                 "INVALID_FIELD", "colour")
    assert_error(_tool(client, tenant, "strip-metadata", None, other="x"), 400,
                 "INVALID_FIELD", "file")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("notes.txt", "hello")
    assert_error(_tool(client, tenant, "strip-metadata", ("notes.zip", archive.getvalue())),
                 415, "UNSUPPORTED_MEDIA", "strip-metadata", "ZIP")
    missing = client.post("/api/files/nope/tools", headers=tenant.headers,
                          json={"tool": "strip-metadata"})
    assert_error(missing, 404, "NOT_FOUND", "nope")
    assert_error(client.post("/api/media/strip-metadata", files={"file": photo}), 401,
                 "UNAUTHORIZED")
