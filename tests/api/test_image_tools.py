"""The image and document tools through the API, in both modes: watermark with a logo sent
as a second part, pdf-preview of a real PDF, watermark of a stored file with its logo as a
data: URL (preview), remove-background with a tiny model, and answering 501 on a server
without one."""

from __future__ import annotations

import base64
import io
import subprocess
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image, ImageStat
from starlette.testclient import TestClient

from tests.api.support import (
    AppEnv,
    Tenant,
    assert_error,
    data_url_bytes,
    output_bytes,
    wait_for_job,
)

BLUE = (30, 60, 220)
RED = (220, 30, 30)


def png(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def mean(data: bytes, box: tuple[int, int, int, int]) -> tuple[float, ...]:
    with Image.open(io.BytesIO(data)) as image:
        return tuple(ImageStat.Stat(image.convert("RGB").crop(box)).mean)


def near(got: tuple[float, ...], want: tuple[int, ...], tolerance: float = 4) -> bool:
    return max(abs(g - w) for g, w in zip(got, want, strict=True)) <= tolerance


def two_page_pdf(size: tuple[int, int] = (200, 100)) -> bytes:
    """Two blank pages of `size` points, the second one filled red."""
    document = pdfium.PdfDocument.new()
    for fill in (None, RED):
        page = document.new_page(*size)
        if fill is not None:
            picture = pdfium.PdfImage.new(document)
            bitmap = pdfium.PdfBitmap.from_pil(Image.new("RGB", (20, 10), fill))
            picture.set_bitmap(bitmap)
            picture.set_matrix(pdfium.PdfMatrix().scale(*size))
            page.insert_obj(picture)
            page.gen_content()
        page.close()
    buffer = io.BytesIO()
    document.save(buffer)
    document.close()
    return buffer.getvalue()


def test_watermark_lays_an_uploaded_logo_over_the_image(client: TestClient,
                                                        tenant: Tenant) -> None:
    response = client.post(
        "/api/media/watermark", headers=tenant.headers,
        files=[("file", ("photo.png", png((200, 100), BLUE), "image/png")),
               ("logo", ("logo.png", png((40, 20), RED), "image/png"))],
        data={"position": "top-left", "opacity": "1", "scale": "0.5", "margin": "10"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["tool"], body["width"], body["height"]) == ("watermark", 200, 100)
    [entry] = body["files"]
    assert (entry["format"], entry["mimeType"]) == ("png", "image/png")
    data = output_bytes(client, entry)
    assert near(mean(data, (14, 14, 106, 56)), RED)  # the logo, 100x50 at (10, 10)
    assert near(mean(data, (120, 0, 200, 100)), BLUE)


def test_an_async_video_watermark_is_a_job_on_the_media_queue(
    client: TestClient, tenant: Tenant, tmp_path: Path
) -> None:
    clip = tmp_path / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=0x1E3CDC:size=96x64:rate=10",
         "-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         str(clip)], check=True)
    response = client.post(
        "/api/media/watermark", headers=tenant.headers,
        files=[("file", ("clip.mp4", clip.read_bytes(), "video/mp4")),
               ("logo", ("logo.png", png((20, 20), RED), "image/png"))],
        data={"position": "top-right", "opacity": "1", "scale": "0.5", "margin": "0",
              "async": "true"},
    )
    assert response.status_code == 202, response.text
    job = wait_for_job(client, tenant, response.json()["jobId"])
    assert job["status"] == "completed", job
    [result] = job["results"]
    assert (result["mimeType"], result["width"], result["height"]) == ("video/mp4", 96, 64)
    marked = tmp_path / "marked.mp4"
    marked.write_bytes(output_bytes(client, result))
    frame = subprocess.run(["ffmpeg", "-v", "error", "-i", str(marked), "-frames:v", "1",
                            "-f", "image2pipe", "-c:v", "png", "-"],
                           capture_output=True, check=True).stdout
    assert near(mean(frame, (52, 4, 92, 44)), RED, 24)  # a 48x48 mark at the top right
    assert near(mean(frame, (0, 20, 40, 64)), BLUE, 12)


def test_pdf_preview_draws_the_asked_page(client: TestClient, tenant: Tenant) -> None:
    response = client.post(
        "/api/media/pdf-preview", headers=tenant.headers,
        files={"file": ("report.pdf", two_page_pdf(), "application/pdf")},
        data={"page": "2", "width": "100", "format": "png"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["page"], body["pages"], body["width"], body["height"]) == (2, 2, 100, 50)
    [entry] = body["files"]
    assert (entry["format"], entry["width"], entry["height"]) == ("png", 100, 50)
    assert near(mean(output_bytes(client, entry), (10, 10, 90, 40)), RED)
    too_far = client.post("/api/media/pdf-preview", headers=tenant.headers,
                          files={"file": ("report.pdf", two_page_pdf(), "application/pdf")},
                          data={"page": "3"})
    assert_error(too_far, 400, "INVALID_FIELD", "page", "2 pages")


def test_a_stored_image_previews_a_watermark_with_a_data_url_logo(client: TestClient,
                                                                  tenant: Tenant) -> None:
    stored = client.post("/api/files", headers=tenant.headers,
                         files={"file": ("photo.png", png((120, 60), BLUE), "image/png")})
    assert stored.status_code == 201, stored.text
    logo = "data:image/png;base64," + base64.b64encode(png((10, 10), RED)).decode()
    response = client.post(
        f"/api/files/{stored.json()['file']['id']}/tools", headers=tenant.headers,
        json={"tool": "watermark", "preview": True, "watermarkLogoDataUrl": logo,
              "params": {"position": "centre", "opacity": "1", "scale": "0.5"}},
    )
    assert response.status_code == 200, response.text
    shown = response.json()["preview"]
    data = data_url_bytes(shown["dataUrl"], "image/png")
    assert near(mean(data, (40, 20, 80, 40)), RED)  # a 60x60 mark, centred
    assert near(mean(data, (0, 0, 20, 60)), BLUE)


def test_remove_background_runs_the_configured_model(client: TestClient,
                                                     tenant: Tenant) -> None:
    photo = Image.new("RGB", (120, 80), BLUE)
    photo.paste(RED, (40, 20, 80, 60))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=95)
    response = client.post("/api/media/remove-background", headers=tenant.headers,
                           files={"file": ("product.jpg", buffer.getvalue(), "image/jpeg")})
    assert response.status_code == 200, response.text
    [entry] = response.json()["files"]
    assert (entry["format"], entry["mimeType"]) == ("png", "image/png")
    with Image.open(io.BytesIO(output_bytes(client, entry))) as cutout:
        assert (cutout.mode, cutout.size) == ("RGBA", (120, 80))
        alpha = cutout.getchannel("A")
        assert ImageStat.Stat(alpha.crop((44, 24, 76, 56))).mean[0] > 250
        assert ImageStat.Stat(alpha.crop((0, 0, 30, 80))).mean[0] < 5


def test_remove_background_without_a_model_is_not_available(limited_env: AppEnv) -> None:
    tenant = limited_env.new_tenant()
    response = limited_env.client.post(
        "/api/media/remove-background", headers=tenant.headers,
        files={"file": ("photo.png", png((32, 24), BLUE), "image/png")})
    assert_error(response, 501, "FEATURE_UNAVAILABLE", "CONVERTLY_BACKGROUND_MODEL")
