"""The steps of tracing a raster to SVG with vtracer (`converter.trace` runs them).

vtracer's cost grows with detail (a noisy 12 MP photo: ~35 s and a 28 MB SVG), so what it is
given is shaped here first: photo-like images are shrunk to a pixel budget, denoised and
posterised to a few dozen colours and traced as polygons; flat graphics (logos, drawings) keep
their colours and get smooth curves; `mono` traces black shapes on a transparent background.
The SVG keeps the size the image (or the resize preset) asked for: the trace's coordinates are
scaled by its viewBox. vtracer itself runs in a child process (trace_child.py) under
`limits.trace_timeout`: native code that a thread cannot stop.
"""

from __future__ import annotations

import json
import os
import re
import sys
from array import array
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyvips
from PIL import Image

from convertly.converters import process
from convertly.converters.base import Limits
from convertly.converters.image import ImageConverter
from convertly.converters.pixels import fit
from convertly.converters.resize import plan_resize
from convertly.errors import ConversionError, ConversionTimeoutError
from convertly.models import (
    FileSpec,
    JobType,
    OutputFormat,
    ResizePreset,
    SourceInfo,
)

# Measured on 2 cores with a 4000x3000 photo-like JPEG (sky, mountains, a textured meadow):
# vtracer's defaults take 35 s and write 28 MB. Shrunk to 2.2 MP, median-filtered, cut to 31
# colours and traced as polygons it takes ~1 s for ~480 KiB; at compression 100 (3 MP, 49
# colours) ~3 s for ~1.8 MiB. Flat graphics trace in a fraction of a second at 4 MP.
PHOTO_MIN_PIXELS = 500_000
PHOTO_EXTRA_PIXELS = 2_500_000  # scaled by detail squared: 3 MP at compression 100
FLAT_MAX_PIXELS = 4_000_000
MONO_MAX_PIXELS = 4_000_000
# Share of the pixels that the 16 most common colours (6 bits a channel) must cover for an
# image to count as a flat graphic: logos measure 0.90-0.98 (JPEG ones at quality 40 too),
# photos 0.01-0.2 and greyscale photos 0.55-0.62.
FLAT_COVERAGE = 0.85
FLAT_TOP_COLOURS = 16
FLAT_BINS = 64


@dataclass(frozen=True)
class Trace:
    """How one image is traced: the pixels vtracer gets and its parameters."""

    style: str  # "photo", "flat" or "mono"
    image: pyvips.Image  # 8-bit sRGB(A), or one band of 0/255 for mono
    params: dict[str, Any]
    note: str


def load_for_trace(
    src: Path,
    source: SourceInfo,
    spec: FileSpec,
    width: int,
    height: int,
    scratch: Path,
    limits: Limits,
) -> pyvips.Image:
    """The image as ImageConverter shapes it (orientation, preset, first frame), 8-bit sRGB.

    A large image whose preset only scales is read straight at the largest size any trace
    uses (shrink-on-load: 0.2 s instead of 1.2 s for a 12 MP JPEG).
    """
    # TIFF, not png: png output of an animation is an APNG of every frame; a trace wants one.
    inner = replace(spec, job_type=JobType.CONVERT, format=OutputFormat.TIFF, strip_metadata=True)
    plan = plan_resize(width, height, ResizePreset.ORIGINAL)
    budget = max(FLAT_MAX_PIXELS, MONO_MAX_PIXELS, PHOTO_MIN_PIXELS + PHOTO_EXTRA_PIXELS)
    fits_only = spec.resize in (
        ResizePreset.ORIGINAL, ResizePreset.WEBSITE, ResizePreset.EMAIL,
        ResizePreset.WIDTH, ResizePreset.HEIGHT,
    )  # fmt: skip
    if fits_only and plan.width * plan.height > budget:
        inner = replace(
            inner, resize=ResizePreset.WIDTH, resize_width=fit(width, height, budget)[0]
        )
    converted = ImageConverter().convert(src, source, inner, scratch, limits)
    try:
        image = pyvips.Image.new_from_file(converted.path, access="sequential")
        if image.interpretation not in ("srgb", "b-w") or image.format != "uchar":
            image = image.colourspace("srgb")
        if image.bands < 3:
            image = image.colourspace("srgb")
        return image.cast("uchar").copy_memory()
    except pyvips.Error as exc:
        raise ConversionError("The image could not be prepared for tracing.") from exc


def _detail(spec: FileSpec) -> float:
    return max(1, min(100, spec.compression)) / 100


def shape_for_trace(image: pyvips.Image, spec: FileSpec) -> Trace:
    """Pick the trace style and parameters from `spec` and the image's colours."""
    detail = _detail(spec)
    if spec.mono:
        return _mono(image, detail)
    if is_flat_graphic(image):
        image = _shrink(image, FLAT_MAX_PIXELS)
        params = {
            "colormode": "color",
            "mode": "spline",
            "filter_speckle": _flat_speckle(detail),
            "color_precision": round(3 + 4 * detail),
            "layer_difference": round(8 + 48 * (1 - detail)),
            "path_precision": 2,
        }
        note = f"Traced at {image.width}x{image.height} as a flat graphic."
        return Trace("flat", image, params, note)
    pixels = PHOTO_MIN_PIXELS + round(PHOTO_EXTRA_PIXELS * detail**2)
    colours = round(2 ** (2 + 3.6 * detail))
    image = _posterise(_shrink(image, pixels).median(3), colours)
    params = {
        "colormode": "color",
        # Polygons look the same as splines at this scale and take a third of the bytes.
        "mode": "polygon",
        "filter_speckle": _photo_speckle(detail),
        "color_precision": 8,  # the palette is already reduced
        "layer_difference": round(8 + 40 * (1 - detail)),
        "path_precision": 1,
    }
    note = (
        f"Traced at {image.width}x{image.height} with {colours} colours: photos are "
        "simplified to keep the SVG small (raise compression for more detail)."
    )
    return Trace("photo", image, params, note)


def _flat_speckle(detail: float) -> int:
    """Patches smaller than this (in pixels) are noise: 2 at full detail, 4 by default."""
    return round(2 + 12 * (1 - detail))


def _photo_speckle(detail: float) -> int:
    return round(4 + 20 * (1 - detail))


def _shrink(image: pyvips.Image, pixels: int) -> pyvips.Image:
    width, height = fit(image.width, image.height, pixels)
    if (width, height) == (image.width, image.height):
        return image
    return image.thumbnail_image(width, height=height, size="force").copy_memory()


def is_flat_graphic(image: pyvips.Image) -> bool:
    """True for logos and drawings: a few colours cover nearly every pixel."""
    rgb = on_white(image)
    if rgb.bands < 3:
        rgb = rgb.colourspace("srgb")
    histogram = array("I")
    histogram.frombytes(rgb.hist_find_ndim(bins=FLAT_BINS).cast("uint").write_to_memory())
    counts = sorted(histogram, reverse=True)
    total = sum(counts) or 1
    return sum(counts[:FLAT_TOP_COLOURS]) / total >= FLAT_COVERAGE


def on_white(image: pyvips.Image) -> pyvips.Image:
    return image.flatten(background=[255] * (image.bands - 1)) if image.hasalpha() else image


def _posterise(image: pyvips.Image, colours: int) -> pyvips.Image:
    """Cut the image to `colours` flat colours (no dithering: dithering is what traces badly)."""
    mode = "RGBA" if image.bands == 4 else "RGB"
    picture = Image.frombytes(mode, (image.width, image.height), image.write_to_memory())
    quantised = picture.quantize(
        colors=colours, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
    ).convert(mode)
    return pyvips.Image.new_from_memory(
        quantised.tobytes(), image.width, image.height, image.bands, "uchar"
    ).copy(interpretation="srgb")


def _mono(image: pyvips.Image, detail: float) -> Trace:
    """Black shapes where the image is darker than its Otsu threshold; transparency is white."""
    if is_flat_graphic(image):
        image = _shrink(image, MONO_MAX_PIXELS)
        grey = on_white(image).colourspace("b-w")[0]
        speckle = _flat_speckle(detail)
    else:
        # A photo's grain would become thousands of specks: the photo budget and denoising.
        image = _shrink(image, PHOTO_MIN_PIXELS + round(PHOTO_EXTRA_PIXELS * detail**2))
        grey = on_white(image).colourspace("b-w")[0].median(3)
        speckle = _photo_speckle(detail)
    threshold = otsu_threshold([int(v) for v in grey.hist_find().tolist()[0]])
    binary = (grey > threshold).ifthenelse(255, 0).cast("uchar").copy_memory()
    params = {
        "colormode": "binary",
        "mode": "spline",
        "filter_speckle": speckle,
        "path_precision": 2,
    }
    note = (
        f"Traced in black and white at {binary.width}x{binary.height}: pixels darker than "
        f"{threshold + 1} of 255 became black shapes on a transparent background."
    )
    return Trace("mono", binary, params, note)


def otsu_threshold(histogram: list[int]) -> int:
    """The grey level that best splits a 256-bin histogram in two (Otsu): dark is <= it."""
    total = sum(histogram)
    weighted = sum(level * count for level, count in enumerate(histogram))
    best, best_spread = 127, -1.0
    dark = dark_sum = 0
    for level, count in enumerate(histogram):
        dark += count
        if dark == 0:
            continue
        light = total - dark
        if light == 0:
            break
        dark_sum += level * count
        spread = dark * light * (dark_sum / dark - (weighted - dark_sum) / light) ** 2
        if spread > best_spread:
            best, best_spread = level, spread
    return best


TRACE_CHILD = Path(__file__).with_name("trace_child.py")


def run_vtracer(src: Path, out: Path, params: dict[str, Any], timeout: int) -> None:
    # Run by path, not with -m: importing the module would import this package first
    # (libvips, pdfium, Pillow: ~0.25 s) in a process that needs only vtracer. -P keeps the
    # script's folder (whose trace.py would shadow the standard library's) off sys.path.
    argv: list[str | Path] = [
        sys.executable,
        "-P",
        TRACE_CHILD,
        src,
        out,
        json.dumps(params),
    ]
    env = {**os.environ, "RUST_BACKTRACE": "0"}
    try:
        process.run(argv, timeout=timeout, env=env)
    except ConversionTimeoutError as exc:
        raise ConversionTimeoutError(
            f"Tracing did not finish within {timeout} s and was stopped. Try mono, a lower "
            "compression value or a smaller resize preset (for example 'website').",
            detail={"timeoutSeconds": timeout},
        ) from exc
    except ConversionError as exc:
        raise ConversionError(
            "The image could not be traced; try mono or another resize preset."
        ) from exc
    if not out.exists():
        raise ConversionError("The image could not be traced; try mono or another resize preset.")


_SVG_ROOT = re.compile(rb"<svg\b[^>]*>")


def set_display_size(svg: Path, width: int, height: int, traced_w: int, traced_h: int) -> None:
    """Show the trace at `width` x `height` whatever size it was traced at (viewBox)."""
    data = svg.read_bytes()
    root = (
        f'<svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {traced_w} {traced_h}">'
    ).encode()
    svg.write_bytes(_SVG_ROOT.sub(root, data, count=1))
