"""Animated PNG and AVIF sequences through the API, in both modes: frames, delays and loop
kept where the target holds an animation, a note where it does not."""

from __future__ import annotations

import io

from PIL import Image, ImageSequence
from starlette.testclient import TestClient

from tests.api.support import Tenant, convert_ok, create_job, output_bytes, wait_for_job

DELAYS = [50, 100, 150, 200]
COLOURS = [(220, 30, 30), (30, 200, 60), (30, 60, 220), (240, 200, 40)]


def apng_bytes(plays: int = 2) -> bytes:
    frames = [Image.new("RGB", (48, 32), colour) for colour in COLOURS]
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:], duration=DELAYS,
                   loop=plays)
    return out.getvalue()


def frames_of(data: bytes) -> tuple[str, int, list[int], int]:
    """(format, frames, delays in ms, times played: 0 forever; a GIF counts repeats)."""
    with Image.open(io.BytesIO(data)) as image:
        delays = []
        for frame in ImageSequence.Iterator(image):
            frame.load()
            delays.append(round(float(frame.info.get("duration") or 0)))
        loop = int(image.info.get("loop", 0))
        plays = loop + 1 if image.format == "GIF" and loop else loop
        return str(image.format), len(delays), delays, plays


def test_apng_converts_with_its_frames(client: TestClient, tenant: Tenant) -> None:
    body = convert_ok(client, tenant, [("a.png", apng_bytes())] * 4,
                      formats='["webp", "gif", "png", "jpg"]')

    outputs = [output_bytes(client, entry) for entry in body["files"]]
    assert frames_of(outputs[0]) == ("WEBP", 4, DELAYS, 2)
    assert frames_of(outputs[1]) == ("GIF", 4, DELAYS, 2)
    assert frames_of(outputs[2]) == ("PNG", 4, DELAYS, 2)
    assert frames_of(outputs[3])[:2] == ("JPEG", 1)
    assert [bool(entry["notes"]) for entry in body["files"]] == [False, False, False, True]
    assert "first frame of 4" in body["files"][3]["notes"][0]


def test_avif_sequence_in_a_job(client: TestClient, tenant: Tenant) -> None:
    frames = [Image.new("RGB", (48, 32), colour) for colour in COLOURS]
    out = io.BytesIO()
    frames[0].save(out, "AVIF", save_all=True, append_images=frames[1:], duration=DELAYS)
    job_id = create_job(client, tenant, [("clip.avifs", out.getvalue())], format="webp")

    job = wait_for_job(client, tenant, job_id)

    assert job["status"] == "completed", job
    result = job["results"][0]
    assert (result["width"], result["height"]) == (48, 32)
    data = client.get(result["downloadUrl"]).content
    assert frames_of(data)[:3] == ("WEBP", 4, DELAYS)
