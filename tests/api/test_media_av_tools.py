"""The audio and video tools through POST /api/media/{tool}, in both modes, sent as the JS SDK
sends them (multipart, every option a string, async as "true"); outputs probed."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from starlette.testclient import TestClient

from tests.api.support import Tenant, assert_error, data_url_bytes, output_bytes, wait_for_job


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=160x120:rate=10:duration=2", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=2", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", str(out)],
                   check=True, timeout=60)  # fmt: skip
    return out.read_bytes()


def probe(data: bytes, tmp_path: Path, name: str) -> dict[str, Any]:
    path = tmp_path / name
    path.write_bytes(data)
    done = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format",
                           "-show_streams", str(path)],
                          capture_output=True, check=True, text=True, timeout=30)  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def send(client: TestClient, tenant: Tenant, tool: str, data: bytes, **fields: str) -> Any:
    return client.post(f"/api/media/{tool}", headers=tenant.headers,
                       files={"file": ("clip.mp4", data, "video/mp4")}, data=fields)


def test_trim_answers_with_the_cut_and_its_facts(
    client: TestClient, tenant: Tenant, clip: bytes, tmp_path: Path
) -> None:
    response = send(client, tenant, "trim", clip, start="0.5", end="1.5", codec="h264",
                    quality="low")  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["tool"], body["start"], body["end"], body["codec"]) == ("trim", 0.5, 1.5, "h264")
    [entry] = body["files"]
    assert entry["mimeType"] == "video/mp4"
    info = probe(output_bytes(client, entry), tmp_path, "cut.mp4")
    assert float(info["format"]["duration"]) == pytest.approx(1.0, abs=0.1)
    assert [s["codec_name"] for s in info["streams"]] == ["h264", "aac"]


def test_poster_frame_and_extract_audio_answer_with_their_files(
    client: TestClient, tenant: Tenant, clip: bytes, tmp_path: Path
) -> None:
    poster = send(client, tenant, "poster-frame", clip, timestamp="1.5", width="80",
                  format="webp")  # fmt: skip
    assert poster.status_code == 200, poster.text
    assert (poster.json()["timestamp"], poster.json()["width"]) == (1.5, 80)
    with Image.open(io.BytesIO(output_bytes(client, poster.json()["files"][0]))) as image:
        assert (image.format, image.size) == ("WEBP", (80, 60))
    sound = send(client, tenant, "extract-audio", clip, format="m4a", duration="1")
    assert sound.status_code == 200, sound.text
    [entry] = sound.json()["files"]
    info = probe(output_bytes(client, entry), tmp_path, "sound.m4a")
    assert [s["codec_type"] for s in info["streams"]] == ["audio"]
    assert float(info["format"]["duration"]) == pytest.approx(1.0, abs=0.1)


def test_inspect_answers_facts_without_a_file(
    client: TestClient, tenant: Tenant, clip: bytes
) -> None:
    response = send(client, tenant, "inspect", clip)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["files"] == [] and body["tool"] == "inspect"
    media = body["media"]  # Convertly's shape for inspect: {"media": {...}}
    assert (media["format"], media["width"], media["height"]) == ("mp4", 160, 120)
    assert [s["codec"] for s in media["streams"]] == ["h264", "aac"]
    assert media["duration"] == pytest.approx(2.0, abs=0.05)


def test_async_storyboard_is_a_job_whose_result_is_the_grid(
    client: TestClient, tenant: Tenant, clip: bytes
) -> None:
    response = send(client, tenant, "storyboard", clip, frames="4", columns="2", width="80",
                    format="png", **{"async": "true"})  # fmt: skip
    assert response.status_code == 202, response.text
    assert response.json()["tool"] == "storyboard"
    job = wait_for_job(client, tenant, response.json()["jobId"])
    assert job["status"] == "completed", job
    [result] = job["results"]
    with Image.open(io.BytesIO(output_bytes(client, result))) as grid:
        assert (grid.format, grid.size) == ("PNG", (160, 120))


def test_bad_options_are_refused_naming_the_field(
    client: TestClient, tenant: Tenant, clip: bytes
) -> None:
    assert_error(send(client, tenant, "trim", clip, start="9"), 400, "INVALID_FIELD", "start")
    assert_error(send(client, tenant, "gif", clip, fps="fast"), 400, "INVALID_FIELD", "fps")
    assert_error(send(client, tenant, "trim", clip, format="webm", codec="h264"), 400,
                 "INVALID_FIELD", "codec")  # fmt: skip


def test_a_stored_video_gets_a_gif_preview(client: TestClient, tenant: Tenant,
                                           clip: bytes) -> None:
    stored = client.post("/api/files", headers=tenant.headers,
                         files={"file": ("clip.mp4", clip, "video/mp4")})
    assert stored.status_code == 201, stored.text
    response = client.post(f"/api/files/{stored.json()['file']['id']}/tools",
                           headers=tenant.headers,
                           json={"tool": "gif", "params": {"duration": "1", "width": "80"},
                                 "preview": True})  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["tool"], body["width"], body["height"], body["frames"]) == ("gif", 80, 60, 10)
    data = data_url_bytes(body["preview"]["dataUrl"], "image/gif")
    with Image.open(io.BytesIO(data)) as animation:
        assert (animation.size, animation.n_frames) == ((80, 60), 10)
