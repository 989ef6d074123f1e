"""Raster images: jpeg png gif webp tiff bmp avif heif in; jpg png webp avif tiff gif heif out.

libvips does the work: `thumbnail` streams the file and shrinks JPEGs while decoding them.
pyvips-binary reads neither HEIF (HEVC) nor BMP and cannot write HEIF, so those go through
Pillow / pillow-heif and cross to libvips as pixels in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyvips

from convertly.converters.base import Limits, ProgressFn, no_progress
from convertly.converters.image_load import (
    Header,
    check_pixels,
    failure,
    load,
    read_header,
    vips_source,
)
from convertly.converters.image_save import LOSSY_TARGETS, save
from convertly.converters.image_shape import frame_height, shape
from convertly.converters.jpeg_markers import strip_jpeg_metadata
from convertly.converters.registry import Registry
from convertly.converters.resize import plan_resize
from convertly.errors import (
    ConversionError,
    CorruptFileError,
    InvalidFieldError,
    UnsupportedConversionError,
)
from convertly.models import (
    CompressMode,
    ConvertedFile,
    FileSpec,
    JobType,
    OutputFormat,
    ResizePreset,
    SourceInfo,
    extension_for,
    mime_for,
)
from convertly.sniff import Kind

SOURCES = (
    Kind.JPEG, Kind.PNG, Kind.GIF, Kind.WEBP, Kind.TIFF, Kind.BMP, Kind.AVIF, Kind.HEIF,
)  # fmt: skip
TARGETS = (
    OutputFormat.JPG, OutputFormat.PNG, OutputFormat.WEBP, OutputFormat.AVIF,
    OutputFormat.TIFF, OutputFormat.GIF, OutputFormat.HEIF,
)  # fmt: skip

_ANIMATED_SOURCES = frozenset({Kind.GIF, Kind.WEBP})
_ANIMATED_TARGETS = frozenset({OutputFormat.GIF, OutputFormat.WEBP})
# Compress can trade quality for size in these (png through palette quantisation).
_TUNABLE_TARGETS = LOSSY_TARGETS | {OutputFormat.PNG}


@dataclass(frozen=True)
class _Outcome:
    quality: int | None
    note: str | None = None
    kept_source: bool = False  # compress handed back the source bytes


class ImageConverter:
    """Converts and compresses raster images with libvips (see the module docstring)."""

    name = "image"

    def convert(
        self,
        src: Path,
        source: SourceInfo,
        spec: FileSpec,
        workdir: Path,
        limits: Limits,
        progress: ProgressFn = no_progress,
    ) -> ConvertedFile:
        kind = Kind(source.kind)
        compress = spec.job_type is JobType.COMPRESS
        if compress:
            _check_compress(kind, spec)
        target = _target_of(kind, spec)
        header = read_header(src, kind)
        animated = header.pages > 1 and kind in _ANIMATED_SOURCES and target in _ANIMATED_TARGETS
        check_pixels(header, limits, frames=header.pages if animated else 1)
        out = workdir / f"output.{extension_for(target)}"
        if compress and spec.lossless and target is OutputFormat.JPG:
            return _jpeg_lossless(src, spec, header, out)

        notes: list[str] = []
        if header.pages > 1 and kind in _ANIMATED_SOURCES and not animated:
            notes.append(f"Only the first frame was kept: {target.value} holds no animation.")
        plan = plan_resize(
            *header.oriented(spec.auto_orient), spec.resize, spec.resize_width, spec.resize_height
        )
        try:
            image = load(src, kind, header, plan, spec.auto_orient, animated)
            image = shape(image, plan, target, keep_cmyk=compress)
            if compress:
                outcome = _compress(image, target, src, kind, spec, header, out)
            else:
                quality = spec.compression if target in LOSSY_TARGETS else None
                save(image, target, out, quality=quality, strip=spec.strip_metadata)
                outcome = _Outcome(quality)
        except pyvips.Error as exc:
            raise failure(src, kind, target) from exc
        if outcome.note:
            notes.append(outcome.note)
        if outcome.kept_source:
            width, height = header.oriented(spec.auto_orient)
        else:
            width, height = image.width, frame_height(image)
        return ConvertedFile(
            path=str(out),
            format=target.value,
            mime_type=mime_for(target.value),
            applied_quality=outcome.quality,
            width=width,
            height=height,
            notes=tuple(notes),
        )


def register(registry: Registry) -> None:
    registry.register(ImageConverter(), SOURCES, TARGETS)


def _target_of(kind: Kind, spec: FileSpec) -> OutputFormat:
    if spec.format is None and spec.job_type is JobType.COMPRESS:
        return OutputFormat(kind.own_format)
    if spec.format is None or spec.format not in TARGETS:
        raise UnsupportedConversionError(
            f"Images convert to {', '.join(TARGETS)}, not {spec.format or 'nothing'}."
        )
    return spec.format


def _check_compress(kind: Kind, spec: FileSpec) -> None:
    if kind is Kind.BMP:
        raise UnsupportedConversionError(
            "BMP files are not compressed as BMP; convert them to png instead "
            "(lossless and much smaller)."
        )
    if spec.resize is not ResizePreset.ORIGINAL:
        raise InvalidFieldError("resize", "compress keeps the image size; resize with convert.")
    if spec.mode is CompressMode.TARGET_SIZE and not (spec.target_bytes or 0) > 0:
        raise InvalidFieldError(
            "targetBytes", "a positive number of bytes is required when mode is 'target-size'."
        )


# -- compress --------------------------------------------------------------------------------


def _compress(
    image: pyvips.Image,
    target: OutputFormat,
    src: Path,
    kind: Kind,
    spec: FileSpec,
    header: Header,
    out: Path,
) -> _Outcome:
    """Re-encode smaller, or hand back the source when that is smaller still."""
    tunable = target in _TUNABLE_TARGETS and not spec.lossless
    if spec.mode is CompressMode.TARGET_SIZE:
        assert spec.target_bytes is not None  # checked by _check_compress
        try:
            quality = _fit_size(image, target, out, spec.target_bytes, tunable, spec.strip_metadata)
        except ConversionError:
            original = _source_bytes(src, kind, spec, header)
            if original is None or len(original) > spec.target_bytes:
                raise
            out.write_bytes(original)
            return _Outcome(None, "The original already fits the target size; it was kept.", True)
    else:
        quality = spec.compression if tunable else None
        save(image, target, out, quality=quality, strip=spec.strip_metadata, smallest=True)
    if out.stat().st_size <= src.stat().st_size:
        return _Outcome(quality)
    original = _source_bytes(src, kind, spec, header)
    if original is None:
        # Only a re-encode removes the metadata, and removing it was asked for.
        return _Outcome(
            quality, "The file is larger than the original: removing metadata needed a re-encode."
        )
    out.write_bytes(original)
    return _Outcome(None, "Re-encoding made the file larger, so the original was kept.", True)


def _fit_size(
    image: pyvips.Image,
    target: OutputFormat,
    out: Path,
    target_bytes: int,
    tunable: bool,
    strip: bool,
) -> int | None:
    """Binary-search the highest quality whose file fits in `target_bytes` (<= 7 encodes)."""
    image = image.copy_memory()  # decode once; every attempt encodes the same pixels
    if not tunable:
        save(image, target, out, quality=None, strip=strip, smallest=True)
        size = out.stat().st_size
        if size > target_bytes:
            out.unlink()
            raise _unreachable(size, None, target_bytes)
        return None
    attempt = out.with_name(f"attempt{out.suffix}")
    low, high = 1, 100
    best: int | None = None
    smallest: int | None = None
    while low <= high:
        quality = (low + high) // 2
        save(image, target, attempt, quality=quality, strip=strip)
        size = attempt.stat().st_size
        if size <= target_bytes:
            attempt.replace(out)
            best, low = quality, quality + 1
        else:
            smallest = size if smallest is None else min(smallest, size)
            high = quality - 1
    attempt.unlink(missing_ok=True)
    if best is None:
        assert smallest is not None
        raise _unreachable(smallest, 1, target_bytes)
    return best


def _unreachable(smallest: int, quality: int | None, target_bytes: int) -> ConversionError:
    at = "at quality 1" if quality is not None else "losslessly"
    return ConversionError(
        f"The smallest file we could make {at} is {smallest:,} bytes, over the target of "
        f"{target_bytes:,} bytes; raise targetBytes or make the image smaller first.",
        detail={"smallestBytes": smallest, "quality": quality, "targetBytes": target_bytes},
    )


def _source_bytes(src: Path, kind: Kind, spec: FileSpec, header: Header) -> bytes | None:
    """The source as compress may return it: None when metadata must go and cannot be cut."""
    data = src.read_bytes()
    if not spec.strip_metadata:
        return data
    if kind is Kind.JPEG:
        # Without baking it into the pixels, the orientation tag is what keeps a photo upright.
        return strip_jpeg_metadata(data, header.orientation if spec.auto_orient else 1)
    return None


def _jpeg_lossless(src: Path, spec: FileSpec, header: Header, out: Path) -> ConvertedFile:
    """Lossless JPEG compress: the entropy-coded data is kept byte for byte."""
    try:
        # Shrink-on-load reads every scan cheaply, which is enough to catch truncation.
        pyvips.Image.new_from_source(
            vips_source(src), "", shrink=8, access="sequential", fail_on="truncated"
        ).avg()
    except pyvips.Error as exc:
        raise CorruptFileError() from exc
    data = _source_bytes(src, Kind.JPEG, spec, header)
    assert data is not None
    out.write_bytes(data)
    width, height = header.oriented(spec.auto_orient)
    return ConvertedFile(
        path=str(out),
        format=OutputFormat.JPG.value,
        mime_type=mime_for(OutputFormat.JPG.value),
        width=width,
        height=height,
        notes=("Lossless JPEG compression keeps the pixels; only metadata can be removed.",),
    )
