"""The thumbnail and transform tools through POST /api/media/{tool}, in both modes: the
SDK's multipart request (`file` plus every option as a string field), the output checked."""

from __future__ import annotations

import io

from PIL import Image
from starlette.testclient import TestClient

from tests import images
from tests.api.support import Tenant, assert_error, output_bytes, wait_for_job


def test_thumbnail_answers_with_the_resized_image(client: TestClient, tenant: Tenant) -> None:
    photo = images.jpeg(400, 300)
    response = client.post("/api/media/thumbnail", headers=tenant.headers,
                           files={"file": ("photo.jpg", photo)},
                           data={"width": "160", "height": "160", "format": "webp"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tool"] == "thumbnail"
    [entry] = body["files"]
    assert (entry["format"], entry["mimeType"]) == ("webp", "image/webp")
    assert (entry["width"], entry["height"]) == (160, 160)
    with Image.open(io.BytesIO(output_bytes(client, entry))) as out:
        assert (out.format, out.size) == ("WEBP", (160, 160))


def test_async_transform_is_a_job_whose_result_is_transformed(client: TestClient,
                                                             tenant: Tenant) -> None:
    response = client.post("/api/media/transform", headers=tenant.headers,
                           files={"file": ("photo.png", images.png(120, 80))},
                           data={"width": "50%", "rotate": "90", "pad": "4", "bg": "#ff0000",
                                 "q": "very_high", "async": "true"})
    assert response.status_code == 202, response.text
    job = wait_for_job(client, tenant, response.json()["jobId"])
    assert job["status"] == "completed", job
    [result] = job["results"]
    assert (result["width"], result["height"]) == (48, 68)  # 60x40, turned, padded
    assert result["mimeType"] == "image/png"


def test_a_bad_option_is_a_400_naming_it(client: TestClient, tenant: Tenant) -> None:
    response = client.post("/api/media/transform", headers=tenant.headers,
                           files={"file": ("photo.jpg", images.jpeg(40, 30))},
                           data={"fit": "stretch"})
    assert_error(response, 400, "INVALID_FIELD", "'fit'", "cover, contain")


def test_background_is_a_colour_for_these_tools_and_true_still_queues(
    client: TestClient, tenant: Tenant
) -> None:
    photo = ("photo.jpg", images.jpeg(200, 100))
    response = client.post("/api/media/thumbnail", headers=tenant.headers, files={"file": photo},
                           data={"width": "100", "height": "100", "fit": "contain",
                                 "background": "#00ff00", "format": "png"})
    assert response.status_code == 200, response.text
    [entry] = response.json()["files"]
    with Image.open(io.BytesIO(output_bytes(client, entry))) as out:
        assert out.size == (100, 100)
        assert out.convert("RGB").getpixel((50, 5)) == (0, 255, 0)
    queued = client.post("/api/media/thumbnail", headers=tenant.headers, files={"file": photo},
                         data={"width": "50", "background": "true"})
    assert queued.status_code == 202, queued.text
    assert wait_for_job(client, tenant, queued.json()["jobId"])["status"] == "completed"
