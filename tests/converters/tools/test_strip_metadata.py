"""strip-metadata at tool level: metadata gone, pixels, orientation, ICC and streams kept."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

from PIL import Image, PngImagePlugin

from convertly.converters.base import no_progress
from convertly.converters.tools.metadata import STRIP_METADATA
from convertly.sniff import sniff_file
from tests.converters.conftest import FakeLimits, quadrants

_GPS = 0x8825
_MAKE = 0x010F
_ORIENTATION = 0x0112


def _run(src: Path, workdir: Path) -> Path:
    out = STRIP_METADATA.run(src, sniff_file(src), {}, workdir, FakeLimits(), no_progress)
    assert len(out.files) == 1 and out.facts == {}
    return out.files[0]


def test_jpeg_loses_exif_and_gps_but_keeps_its_image_data_and_orientation(
        tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[_MAKE] = "Camera Maker"
    exif[_ORIENTATION] = 6
    exif.get_ifd(_GPS)[2] = (51.0, 30.0, 0.0)
    buffer = io.BytesIO()
    quadrants(64, 32).save(buffer, "JPEG", quality=90, exif=exif.tobytes(),
                           comment=b"secret note")
    src = tmp_path / "photo.jpg"
    src.write_bytes(buffer.getvalue())

    out = _run(src, tmp_path)

    data = out.read_bytes()
    assert b"Camera Maker" not in data and b"secret note" not in data
    with Image.open(out) as image, Image.open(src) as original:
        kept = image.getexif()
        assert dict(kept) == {_ORIENTATION: 6}  # upright as before, nothing else
        assert image.size == (64, 32)
        # The entropy-coded data is the original's, byte for byte.
        assert image.tobytes() == original.tobytes()
    assert data.endswith(src.read_bytes()[src.read_bytes().index(b"\xff\xda"):])


def test_png_loses_text_chunks_and_keeps_pixels_and_icc(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Someone Private")
    info.add_itxt("Location", "51.5, -0.12")
    src = tmp_path / "graphic.png"
    quadrants(40, 20).save(src, "PNG", pnginfo=info, icc_profile=_srgb_profile())

    out = _run(src, tmp_path)

    with Image.open(out) as image, Image.open(src) as original:
        assert image.text == {}
        assert image.info.get("icc_profile") == original.info["icc_profile"]
        assert image.convert("RGB").tobytes() == original.convert("RGB").tobytes()


def test_video_loses_container_tags_and_keeps_streams_uncopied(tmp_path: Path) -> None:
    src = tmp_path / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000", "-t", "1",
         "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest",
         "-metadata", "title=Holiday at home", "-metadata", "location=+51.5-000.1/",
         "-metadata:s:v", "handler_name=PhoneCam", str(src)], check=True)

    out = _run(src, tmp_path)

    before, after = _probe(src), _probe(out)
    tags = json.dumps(after["format"].get("tags", {})) + json.dumps(
        [s.get("tags", {}) for s in after["streams"]])
    assert "Holiday" not in tags and "51.5" not in tags and "PhoneCam" not in tags
    assert [s["codec_name"] for s in after["streams"]] == ["h264", "aac"]
    assert [s.get("nb_frames") for s in after["streams"]] == [
        s.get("nb_frames") for s in before["streams"]]


def test_audio_loses_id3_tags(tmp_path: Path) -> None:
    src = tmp_path / "song.mp3"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000",
         "-t", "1", "-metadata", "artist=Private Person", "-c:a", "libmp3lame", str(src)],
        check=True)

    out = _run(src, tmp_path)

    assert b"Private Person" in src.read_bytes()
    assert b"Private Person" not in out.read_bytes()
    assert float(_probe(out)["format"]["duration"]) > 0.9


def _probe(path: Path) -> dict[str, object]:
    done = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of",
                           "json", str(path)], check=True, capture_output=True, text=True)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
