"""The thumbnail and transform tools at converter level: real files in, real files out."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from convertly.converters.tools.base import Tool, ToolOutput
from convertly.converters.tools.image import THUMBNAIL, TRANSFORM
from convertly.errors import ImageTooLargeError, InvalidFieldError
from convertly.sniff import Kind, sniff_file
from convertly.transforms.parse import parse
from tests.converters.conftest import GREEN, RED, FakeLimits, noisy, quadrants, write_image
from tests.images import EXIF_ARTIST, decode


def run_tool(tool: Tool, src: Path, workdir: Path, limits: FakeLimits | None = None,
             **raw: Any) -> ToolOutput:
    options = parse({k: str(v) for k, v in raw.items()}, tool.params)
    return tool.run(src, sniff_file(src), options, workdir, limits or FakeLimits(),
                    lambda *_: None)


def pixel(picture: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = picture.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def test_thumbnail_of_a_jpeg_fits_the_default_box_and_drops_metadata(
    tmp_path: Path, workdir: Path
) -> None:
    exif = Image.Exif()
    exif[EXIF_ARTIST] = "someone"
    src = write_image(tmp_path, Kind.JPEG, noisy(400, 300), exif=exif)
    out = run_tool(THUMBNAIL, src, workdir)
    assert [f.name for f in out.files] == ["thumbnail.jpg"]
    assert out.facts == {"width": 320, "height": 240, "format": "jpg"}
    found = decode(out.files[0].read_bytes())
    assert (found.format, found.width, found.height) == ("JPEG", 320, 240)
    assert EXIF_ARTIST not in found.exif


def test_thumbnail_cover_crop_in_another_format(tmp_path: Path, workdir: Path) -> None:
    src = write_image(tmp_path, Kind.PNG, quadrants(400, 200))
    out = run_tool(THUMBNAIL, src, workdir, width=100, height=100, position="left",
                   format="webp", quality="high")
    found = decode(out.files[0].read_bytes())
    assert (found.format, found.width, found.height) == ("WEBP", 100, 100)
    with Image.open(out.files[0]) as picture:
        assert max(abs(a - b) for a, b in zip(pixel(picture.convert("RGB"), (80, 20)),
                                              RED, strict=True)) < 12


def test_transform_of_a_heif_decoded_whole_first(tmp_path: Path, workdir: Path) -> None:
    src = write_image(tmp_path, Kind.HEIF, quadrants(120, 80))
    out = run_tool(TRANSFORM, src, workdir, width="50%", rotate=90, flop=1, radius=8)
    assert out.facts["format"] == "png"  # heif is not written here; rounded corners need alpha
    found = decode(out.files[0].read_bytes())
    assert (found.format, found.width, found.height, found.mode) == ("PNG", 40, 60, "RGBA")
    with Image.open(out.files[0]) as picture:
        # rotated clockwise, then mirrored: top-left red went to top-right, then back left
        found_rgb = pixel(picture.convert("RGB"), (10, 10))
        assert max(abs(a - b) for a, b in zip(found_rgb, RED, strict=True)) < 20
        assert pixel(picture, (0, 0))[3] == 0


def test_the_pixel_budget_counts_what_the_transform_adds(tmp_path: Path, workdir: Path) -> None:
    src = write_image(tmp_path, Kind.PNG, quadrants(100, 100, (GREEN,) * 4))
    with pytest.raises(ImageTooLargeError):
        run_tool(TRANSFORM, src, workdir, FakeLimits(max_pixels=20_000), pad=50)
    assert run_tool(TRANSFORM, src, workdir, FakeLimits(max_pixels=20_000)).facts["width"] == 100


def test_each_tool_takes_only_its_own_parameters() -> None:
    with pytest.raises(InvalidFieldError) as caught:
        parse({"rotate": "90"}, THUMBNAIL.params)
    assert "'rotate'" in caught.value.message and "width" in caught.value.message
    assert {p.name for p in THUMBNAIL.params} < {p.name for p in TRANSFORM.params}


def test_thumbnail_of_a_video_is_a_frame_as_jpeg(tmp_path: Path, workdir: Path) -> None:
    src = tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                    "color=c=blue:s=160x120:r=10:d=2", "-c:v", "libx264", "-preset",
                    "ultrafast", "-pix_fmt", "yuv420p", str(src)], check=True, timeout=60)
    out = run_tool(THUMBNAIL, src, workdir, width=80)
    assert out.facts == {"width": 80, "height": 60, "format": "jpg"}
    assert [f.name for f in out.files] == ["thumbnail.jpg"]
    assert sorted(p.name for p in workdir.iterdir()) == ["thumbnail.jpg"]
    with Image.open(out.files[0]) as picture:
        red, green, blue = pixel(picture.convert("RGB"), (40, 30))
        assert blue > 200 and red < 30 and green < 30
