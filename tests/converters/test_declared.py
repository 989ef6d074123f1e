"""The size a header declares, read without decoding, for every raster kind and layout."""

from __future__ import annotations

from pathlib import Path

import pillow_heif
import pytest
import pyvips
from PIL import Image

from convertly.converters.image.declared import check_declared, declared_size
from convertly.errors import ImageTooLargeError
from convertly.sniff import Kind, sniff_file
from tests.converters.conftest import FakeLimits

pillow_heif.register_heif_opener()

LAYOUTS = {
    "baseline.jpg": ("JPEG", {}),
    "progressive.jpg": ("JPEG", {"progressive": True}),
    "big-exif.jpg": ("JPEG", {"exif": b"Exif\x00\x00" + b"\x00" * 60_000}),
    "plain.png": ("PNG", {}),
    "plain.gif": ("GIF", {}),
    "lossy.webp": ("WEBP", {"quality": 80}),
    "lossless.webp": ("WEBP", {"lossless": True}),
    "extended.webp": ("WEBP", {"exif": b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00"}),
    "plain.tiff": ("TIFF", {}),
    "plain.bmp": ("BMP", {}),
    "plain.avif": ("AVIF", {}),
}


@pytest.mark.parametrize("name", LAYOUTS)
def test_declared_size_of_each_layout(name: str, tmp_path: Path) -> None:
    fmt, options = LAYOUTS[name]
    path = tmp_path / name
    Image.new("RGB", (123, 45), "red").save(path, format=fmt, **options)
    assert declared_size(path, Kind(sniff_file(path).kind)) == (123, 45)


@pytest.mark.parametrize("options", [{"bigtiff": True}, {"tile": True, "compression": "lzw"},
                                     {"bigtiff": True, "tile": True}])
def test_tiff_layouts_libvips_writes(options: dict[str, object], tmp_path: Path) -> None:
    path = tmp_path / "a.tiff"
    pyvips.Image.black(123, 45).tiffsave(str(path), **options)
    assert declared_size(path, Kind.TIFF) == (123, 45)


def test_heif_gives_its_largest_extent(tmp_path: Path) -> None:
    path = tmp_path / "a.heic"
    Image.new("RGB", (128, 64), "red").save(path, format="HEIF")
    assert declared_size(path, Kind.HEIF) == (128, 64)


def test_a_header_it_cannot_read_says_nothing(tmp_path: Path) -> None:
    path = tmp_path / "junk"
    for data in (b"\xff\xd8\xff", b"II*\x00\xff\xff\xff\x7f", b"\x89PNG\r\n\x1a\n"):
        path.write_bytes(data)
        kind = Kind.JPEG if data[0] == 0xFF else Kind.TIFF if data[0] == 0x49 else Kind.PNG
        assert declared_size(path, kind) is None


def test_check_declared_refuses_over_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.new("RGB", (600, 400)).save(path)
    check_declared(path, Kind.PNG, FakeLimits(max_pixels=240_000))
    with pytest.raises(ImageTooLargeError, match="600x400"):
        check_declared(path, Kind.PNG, FakeLimits(max_pixels=239_999))
