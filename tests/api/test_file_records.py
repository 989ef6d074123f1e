"""Stored file records describe files as people see them: width and height after EXIF
orientation (and a video's rotation), the duration of audio and video, the page count of a
PDF; the orientation filter goes by the displayed size. Uploads through /api/files, a saved
sync source and a job's outputs, in both modes; every file is generated here."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from starlette.testclient import TestClient

from tests import images
from tests.api.library_support import list_files, upload
from tests.api.support import AppEnv, Tenant, convert_ok, create_job, wait_for_job
from tests.hostile import samples


def _sideways_photo() -> bytes:
    """Stored 300 x 200 with EXIF orientation 6: a viewer turns it to 200 x 300 portrait."""
    return images.jpeg(300, 200, exif={images.EXIF_ORIENTATION: 6})


def _media(directory: Path, name: str, args: list[str], seconds: float = 1.5) -> bytes:
    out = directory / name
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc=size=96x64:rate=10:duration={seconds}", "-f", "lavfi", "-i",
         f"sine=frequency=440:sample_rate=8000:duration={seconds}", *args, str(out)],
        check=True, timeout=60, stdin=subprocess.DEVNULL)
    return out.read_bytes()


def _mp3(directory: Path) -> bytes:
    return _media(directory, "tone.mp3", ["-map", "1:a", "-c:a", "libmp3lame", "-b:a", "32k"])


def _mp4(directory: Path, *, rotate: int | None = None) -> bytes:
    clip = _media(directory, "clip.mp4", ["-map", "0:v", "-map", "1:a", "-c:v", "libx264",
                                          "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                                          "-c:a", "aac"])
    if rotate is None:
        return clip
    # A phone's portrait video: landscape frames and a display matrix (written on a copy).
    rotated = directory / "rotated.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(directory / "clip.mp4"), "-c",
                    "copy", "-metadata:s:v:0", f"rotate={rotate}", str(rotated)],
                   check=True, timeout=60, stdin=subprocess.DEVNULL)
    return rotated.read_bytes()


def _three_pages() -> bytes:
    pages = [Image.new("RGB", (60, 40), colour) for colour in ("red", "green", "blue")]
    buf = io.BytesIO()
    pages[0].save(buf, format="PDF", save_all=True, append_images=pages[1:])
    return buf.getvalue()


def _orientation(client: TestClient, tenant: Tenant, orientation: str) -> list[str]:
    response = client.get("/api/files/search", headers=tenant.headers,
                          params={"orientation": orientation})
    assert response.status_code == 200, response.text
    return sorted(f["filename"] for f in response.json()["files"])


def test_a_photo_is_recorded_as_displayed(client: TestClient, tenant: Tenant) -> None:
    record = upload(client, tenant, "portrait.jpg", _sideways_photo())
    assert (record["width"], record["height"]) == (200, 300)
    upload(client, tenant, "landscape.jpg", images.jpeg(300, 200))
    assert _orientation(client, tenant, "vertical") == ["portrait.jpg"]
    assert _orientation(client, tenant, "horizontal") == ["landscape.jpg"]
    [listed] = [f for f in list_files(client, tenant)["files"]
                if f["filename"] == "portrait.jpg"]
    assert (listed["width"], listed["height"]) == (200, 300)


def test_audio_and_video_record_their_duration(client: TestClient, tenant: Tenant,
                                               tmp_path: Path) -> None:
    tone = upload(client, tenant, "tone.mp3", _mp3(tmp_path))
    assert tone["mime_type"] == "audio/mpeg"
    assert tone["duration"] == pytest.approx(1.5, abs=0.3)
    assert (tone["width"], tone["height"]) == (None, None)
    clip = upload(client, tenant, "clip.mp4", _mp4(tmp_path))
    assert clip["duration"] == pytest.approx(1.5, abs=0.3)
    assert (clip["width"], clip["height"]) == (96, 64)


def test_a_rotated_video_is_recorded_as_displayed(client: TestClient, tenant: Tenant,
                                                  tmp_path: Path) -> None:
    clip = upload(client, tenant, "phone.mp4", _mp4(tmp_path, rotate=90))
    assert (clip["width"], clip["height"]) == (64, 96)
    assert _orientation(client, tenant, "vertical") == ["phone.mp4"]


def test_a_pdf_records_its_page_count(client: TestClient, tenant: Tenant) -> None:
    record = upload(client, tenant, "three.pdf", _three_pages())
    assert record["mime_type"] == "application/pdf"
    assert record["metadata"]["pageCount"] == 3
    assert record["duration"] is None
    got = client.get(f"/api/files/{record['id']}", headers=tenant.headers).json()["file"]
    assert got["metadata"]["pageCount"] == 3


def test_a_saved_source_and_its_output_are_recorded_as_displayed(
        client: TestClient, tenant: Tenant) -> None:
    convert_ok(client, tenant, [("portrait.jpg", _sideways_photo())], format="webp",
               saveToStorage=True)
    records = {f["filename"]: f for f in list_files(client, tenant)["files"]}
    assert (records["portrait.jpg"]["width"], records["portrait.jpg"]["height"]) == (200, 300)
    assert (records["portrait.webp"]["width"], records["portrait.webp"]["height"]) == (200, 300)


def test_job_outputs_record_duration_and_pages(app_env: AppEnv, tmp_path: Path) -> None:
    tenant = app_env.new_tenant()
    job_id = create_job(app_env.client, tenant,
                        [("clip.mp4", samples.ffmpeg(samples._MEDIA["mp4"], seconds=1.5)),
                         ("tone.mp3", _mp3(tmp_path))], formats=["mp3", "wav"])
    job = wait_for_job(app_env.client, tenant, job_id)
    assert job["status"] == "completed", job
    records = {f["filename"]: f for f in list_files(app_env.client, tenant)["files"]}
    assert records["clip.mp3"]["duration"] == pytest.approx(1.5, abs=0.3)
    assert records["tone.wav"]["duration"] == pytest.approx(1.5, abs=0.3)
    pdf_job = create_job(app_env.client, tenant, [("pages.gif", samples.gif_animation(3, 40,
                                                                                       30))],
                         format="pdf")
    assert wait_for_job(app_env.client, tenant, pdf_job)["status"] == "completed"
    [pdf] = [f for f in list_files(app_env.client, tenant)["files"]
             if f["filename"] == "pages.pdf"]
    assert pdf["metadata"]["pageCount"] == 3
