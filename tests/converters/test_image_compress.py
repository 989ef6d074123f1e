"""Compress on real photographs (scikit-image's, a dev dependency) re-encoded as cameras and
websites save them: what it saves, at what SSIM, and when it keeps the original.

Thresholds come from bench/compression.py's table (quality 70): astronaut q95 saved 66 % at
SSIM 0.951 (plain libjpeg: 63 % at 0.938); the q75 photos saved 11 % at SSIM 0.975-0.985."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips
from PIL import Image, JpegImagePlugin
from skimage import data as photos

from bench.compression import rgb_pixels, screenshot, ssim
from convertly.converters.image.jpeg_quality import (
    IMAGEMAGICK_LUMA,
    jpeg_quality,
    luma_table,
    scaled_table,
)
from convertly.models import JobType
from convertly.sniff import Kind, sniff_file
from tests.converters.conftest import ConvertFn

COMPRESS = JobType.COMPRESS


def _photo(path: Path, picture: np.ndarray, quality: int, **options: object) -> Path:
    Image.fromarray(picture[..., :3]).save(path, "JPEG", quality=quality, subsampling="4:2:0",
                                           **options)
    return path


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.asarray(photos.astronaut())


def _saving(src: Path, out: Path) -> float:
    return 1 - out.stat().st_size / src.stat().st_size


def test_libvips_writes_with_mozjpeg(tmp_path: Path) -> None:
    # trellis and quant_table only do anything when libvips' libjpeg is mozjpeg (pyvips-binary's
    # is); a libjpeg-turbo build would write the Annex K table here.
    path = tmp_path / "moz.jpg"
    pyvips.Image.black(16, 16).jpegsave(str(path), Q=50, quant_table=3, trellis_quant=True)
    assert luma_table(path) == scaled_table(IMAGEMAGICK_LUMA, 50)


@pytest.mark.parametrize("quality", [10, 50, 75, 92, 100])
def test_quality_is_read_back_from_the_tables(quality: int, tmp_path: Path) -> None:
    src = _photo(tmp_path / "a.jpg", np.zeros((16, 16, 3), np.uint8), quality)
    assert jpeg_quality(src) == quality


def test_quality_of_a_file_without_tables_is_unknown(tmp_path: Path) -> None:
    path = tmp_path / "not.jpg"
    path.write_bytes(b"\xff\xd8\xff\xd9")
    assert jpeg_quality(path) is None


def test_q70_on_a_camera_jpeg_saves_most_of_it(
    astronaut: np.ndarray, tmp_path: Path, convert: ConvertFn
) -> None:
    src = _photo(tmp_path / "camera.jpg", astronaut, 95)
    plain = tmp_path / "plain.jpg"
    pyvips.Image.new_from_file(str(src)).jpegsave(str(plain), Q=70, optimize_coding=True)

    result = convert(src, job_type=COMPRESS, compression=70)

    out = Path(result.path)
    reference = rgb_pixels(src)
    assert result.applied_quality == 70
    assert _saving(src, out) >= 0.5
    assert ssim(reference, rgb_pixels(out)) >= 0.94
    # Smaller than plain libjpeg at the same quality, and no worse for it.
    assert out.stat().st_size < plain.stat().st_size
    assert ssim(reference, rgb_pixels(out)) >= ssim(reference, rgb_pixels(plain))
    with Image.open(out) as img:
        assert img.info.get("progressive")
        assert JpegImagePlugin.get_sampling(img) == 2  # 4:2:0


def test_a_q75_jpeg_at_q70_still_saves(
    astronaut: np.ndarray, tmp_path: Path, convert: ConvertFn
) -> None:
    src = _photo(tmp_path / "web.jpg", astronaut, 75)

    result = convert(src, job_type=COMPRESS, compression=70)

    out = Path(result.path)
    assert _saving(src, out) >= 0.08
    assert ssim(rgb_pixels(src), rgb_pixels(out)) >= 0.97
    assert jpeg_quality(out) == 70  # its own output reads back as the quality asked for


def test_a_low_quality_jpeg_is_kept_and_the_note_says_why(
    astronaut: np.ndarray, tmp_path: Path, convert: ConvertFn
) -> None:
    src = _photo(tmp_path / "low.jpg", astronaut, 50, comment=b"kept?")

    result = convert(src, job_type=COMPRESS, compression=70)
    kept = Path(result.path).read_bytes()
    stripped = convert(src, job_type=COMPRESS, compression=70, strip_metadata=True)

    assert kept == src.read_bytes()
    assert result.applied_quality is None
    [note] = result.notes
    assert "quality 50" in note and "original was kept" in note
    out = Path(stripped.path)
    assert out.stat().st_size < src.stat().st_size
    assert np.array_equal(rgb_pixels(out), rgb_pixels(src))  # the metadata went, nothing else
    assert "metadata removed" in stripped.notes[0]


def test_compressing_its_own_output_again_keeps_it(
    astronaut: np.ndarray, tmp_path: Path, convert: ConvertFn
) -> None:
    src = _photo(tmp_path / "camera.jpg", astronaut, 95)
    once = tmp_path / "once.jpg"
    once.write_bytes(Path(convert(src, job_type=COMPRESS, compression=60).path).read_bytes())

    again = convert(once, job_type=COMPRESS, compression=60)

    assert Path(again.path).read_bytes() == once.read_bytes()
    assert again.notes


def test_above_q90_libjpeg_tables_and_the_source_chroma_stay(
    astronaut: np.ndarray, tmp_path: Path, convert: ConvertFn
) -> None:
    src = _photo(tmp_path / "camera.jpg", astronaut, 100)

    result = convert(src, job_type=COMPRESS, compression=95)

    out = Path(result.path)
    assert jpeg_quality(out) == 95
    assert _saving(src, out) >= 0.3
    with Image.open(out) as img:
        assert JpegImagePlugin.get_sampling(img) == 2  # 4:4:4 would only add bytes


def test_png_screenshot_lossless_stays_pixel_identical(tmp_path: Path, convert: ConvertFn) -> None:
    shot = screenshot(640, 400)
    src = tmp_path / "shot.png"
    shot.save(src, "PNG", compress_level=1)

    result = convert(src, job_type=COMPRESS, lossless=True)

    out = Path(result.path)
    assert out.stat().st_size < src.stat().st_size
    assert np.array_equal(rgb_pixels(out), np.asarray(shot))


def test_png_screenshot_quantised_keeps_its_look(tmp_path: Path, convert: ConvertFn) -> None:
    src = tmp_path / "shot.png"
    screenshot(640, 400).save(src, "PNG")

    result = convert(src, job_type=COMPRESS, compression=70)

    out = Path(result.path)
    assert _saving(src, out) >= 0.3
    assert ssim(rgb_pixels(src), rgb_pixels(out)) >= 0.99


def test_webp_photo_at_q70(astronaut: np.ndarray, tmp_path: Path, convert: ConvertFn) -> None:
    src = tmp_path / "photo.webp"
    Image.fromarray(astronaut).save(src, "WEBP", quality=90)

    result = convert(src, job_type=COMPRESS, compression=70)

    out = Path(result.path)
    assert sniff_file(out).kind == Kind.WEBP
    assert result.applied_quality == 70
    assert _saving(src, out) >= 0.3
    assert ssim(rgb_pixels(src), rgb_pixels(out)) >= 0.93

