"""Converter test fixtures: tiny images generated here, a Limits stand-in, a convert runner."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pillow_heif
import pytest
from PIL import Image, ImageStat

from convertly.converters.base import Converter
from convertly.converters.image import ImageConverter
from convertly.converters.registry import settle
from convertly.models import ConvertedFile, FileSpec, JobType, OutputFormat
from convertly.sniff import Kind, sniff_file

# Lets Image.open read the HEIF files the converter writes.
pillow_heif.register_heif_opener()

Colour = tuple[int, int, int]
RED: Colour = (220, 30, 30)
GREEN: Colour = (30, 200, 60)
BLUE: Colour = (30, 60, 220)
WHITE: Colour = (255, 255, 255)
# top-left, top-right, bottom-left, bottom-right
QUADRANTS: tuple[Colour, Colour, Colour, Colour] = (RED, GREEN, BLUE, WHITE)

PIL_FORMATS = {
    Kind.JPEG: "JPEG",
    Kind.PNG: "PNG",
    Kind.GIF: "GIF",
    Kind.WEBP: "WEBP",
    Kind.TIFF: "TIFF",
    Kind.BMP: "BMP",
    Kind.AVIF: "AVIF",
    Kind.HEIF: "HEIF",
}
SAVE_OPTIONS: dict[Kind, dict[str, Any]] = {
    Kind.JPEG: {"quality": 95},
    Kind.WEBP: {"quality": 95},
    Kind.AVIF: {"quality": 90},
    Kind.HEIF: {"quality": 90},
}


@dataclass(frozen=True)
class FakeLimits:
    """The converter limits (convertly.converters.base.Limits) with test-sized defaults."""

    max_pixels: int = 40_000_000
    max_pdf_pages: int = 50
    pdf_dpi: int = 72
    max_media_seconds: int = 600
    trace_timeout: int = 30
    max_archive_entries: int = 1000
    max_extracted_bytes: int = 200 * 1024 * 1024
    rar_command: str = ""
    max_expansion_ratio: int = 100_000
    background_model: str = ""


def run_converter(
    converter: Converter,
    src: Path,
    target: OutputFormat | None,
    workdir: Path,
    *,
    limits: FakeLimits | None = None,
    **fields: Any,
) -> ConvertedFile:
    """Convert `src` with `converter`, the spec's target settled as the service's plan does."""
    source = sniff_file(src)
    spec = settle(Kind(source.kind), FileSpec(index=0, filename=src.name, format=target, **fields))
    return converter.convert(src, source, spec, workdir, limits or FakeLimits())


def quadrants(width: int, height: int, colours: Sequence[Colour] = QUADRANTS) -> Image.Image:
    """An RGB image split into four flat quadrants: easy to compress, orientation visible."""
    image = Image.new("RGB", (width, height))
    half_w, half_h = width // 2, height // 2
    boxes = [
        (0, 0, half_w, half_h),
        (half_w, 0, width, half_h),
        (0, half_h, half_w, height),
        (half_w, half_h, width, height),
    ]
    for box, colour in zip(boxes, colours, strict=True):
        image.paste(colour, box)
    return image


def noisy(width: int, height: int) -> Image.Image:
    """Quadrants with noise on top: a photo-like image that does not compress to nothing."""
    noise = Image.effect_noise((width, height), 64).convert("RGB")
    return Image.blend(quadrants(width, height), noise, 0.35)


def write_image(directory: Path, kind: Kind, image: Image.Image, **options: Any) -> Path:
    path = directory / f"source.{kind.value}"
    image.save(path, format=PIL_FORMATS[kind], **{**SAVE_OPTIONS.get(kind, {}), **options})
    return path


def write_animation(directory: Path, kind: Kind, size: tuple[int, int] = (80, 40)) -> Path:
    """Three flat frames (red, green, blue) shown for 100, 200 and 300 ms, looping forever."""
    frames = [Image.new("RGB", size, colour) for colour in (RED, GREEN, BLUE)]
    path = directory / f"anim.{kind.value}"
    frames[0].save(
        path,
        format=PIL_FORMATS[kind],
        save_all=True,
        append_images=frames[1:],
        duration=[100, 200, 300],
        loop=0,
        **({"lossless": True} if kind is Kind.WEBP else {}),
    )
    return path


def quadrant_means(image: Image.Image) -> list[tuple[float, ...]]:
    """Mean RGB of the middle of each quadrant (edges blur under chroma subsampling)."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    means = []
    for left, top in ((0, 0), (width // 2, 0), (0, height // 2), (width // 2, height // 2)):
        box = (
            left + width // 8,
            top + height // 8,
            left + 3 * width // 8,
            top + 3 * height // 8,
        )
        means.append(tuple(ImageStat.Stat(rgb.crop(box)).mean))
    return means


def assert_colours_close(
    actual: Sequence[Sequence[float]], expected: Sequence[Sequence[float]], tolerance: float
) -> None:
    for got, want in zip(actual, expected, strict=True):
        assert max(abs(g - w) for g, w in zip(got, want, strict=True)) <= tolerance, (
            f"{[round(v) for v in got]} is not within {tolerance} of {list(want)}"
        )


ConvertFn = Callable[..., ConvertedFile]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def convert(workdir: Path) -> ConvertFn:
    """convert(src, target, limits=..., **FileSpec fields) through ImageConverter."""

    def run(
        src: Path,
        target: OutputFormat | None = None,
        *,
        limits: FakeLimits | None = None,
        **fields: Any,
    ) -> ConvertedFile:
        source = sniff_file(src)
        if fields.get("job_type") is JobType.COMPRESS and target is None:
            target = OutputFormat(Kind(source.kind).own_format)
        spec = FileSpec(index=0, filename=src.name, format=target, **fields)
        return ImageConverter().convert(src, source, spec, workdir, limits or FakeLimits())

    return run
