"""Raster images: jpeg png gif webp tiff bmp avif heif in; jpg png webp avif tiff gif heif out.

libvips does the work: `thumbnail` streams the file and shrinks JPEGs while decoding them.
pyvips-binary reads neither HEIF (HEVC) nor BMP and cannot write HEIF, so those go through
Pillow / pillow-heif and cross to libvips as pixels in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pillow_heif
import pyvips
from PIL import Image

from convertly.converters.base import Limits, ProgressFn, no_progress
from convertly.converters.image_load import (
    Header,
    check_pixels,
    failure,
    int_field,
    load,
    read_header,
    vips_source,
)
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

# Measured on 2 cores, 12 MP photos at quality 82: AVIF effort 0 encodes in 0.3-0.5 s
# (effort 1 is slower and no smaller, effort 2 takes 1.5 s); x265's "ultrafast" preset
# encodes HEIF in 0.9-1.3 s (its default preset takes several seconds).
AVIF_EFFORT = 0
HEIF_ENCODER_PARAMS = {"preset": "ultrafast"}
PNG_COMPRESSION = 6
PNG_ALL_FILTERS = 0xF8  # let libpng pick a row filter per row: ~17 % smaller photos

_ANIMATED_SOURCES = frozenset({Kind.GIF, Kind.WEBP})
_ANIMATED_TARGETS = frozenset({OutputFormat.GIF, OutputFormat.WEBP})
_LOSSY_TARGETS = frozenset(
    {OutputFormat.JPG, OutputFormat.WEBP, OutputFormat.AVIF, OutputFormat.HEIF}
)
# Compress can trade quality for size in these (png through palette quantisation).
_TUNABLE_TARGETS = _LOSSY_TARGETS | {OutputFormat.PNG}
_EXIF_ORIENTATION = 0x0112


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
                quality = spec.compression if target in _LOSSY_TARGETS else None
                _save(image, target, out, quality=quality, strip=spec.strip_metadata)
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


# -- writing ---------------------------------------------------------------------------------


def _save(
    image: pyvips.Image,
    target: OutputFormat,
    path: Path,
    *,
    quality: int | None,
    strip: bool,
    smallest: bool = False,
) -> None:
    """Encode `image` to `path`. `quality` None means lossless; `smallest` spends more CPU.

    Stripping keeps the ICC profile (colours would shift without it) and drops the rest.
    """
    keep = pyvips.ForeignKeep.ICC if strip else pyvips.ForeignKeep.ALL
    out = str(path)
    if quality is not None:
        quality = max(1, min(100, quality))
    match target:
        case OutputFormat.JPG:
            image.jpegsave(out, Q=quality, optimize_coding=True, keep=keep)
        case OutputFormat.PNG if quality is None:
            compression = 9 if smallest else PNG_COMPRESSION
            image.pngsave(out, compression=compression, filter=PNG_ALL_FILTERS, keep=keep)
        case OutputFormat.PNG:
            image.pngsave(out, palette=True, Q=quality, compression=9, keep=keep)
        case OutputFormat.WEBP if quality is None:
            image.webpsave(out, lossless=True, keep=keep)
        case OutputFormat.WEBP:
            image.webpsave(out, Q=quality, keep=keep)
        case OutputFormat.AVIF:
            options = {"lossless": True} if quality is None else {"Q": quality}
            image.heifsave(out, compression="av1", effort=AVIF_EFFORT, keep=keep, **options)
        case OutputFormat.TIFF:
            level = 9 if smallest else 6
            image.tiffsave(
                out, compression="deflate", predictor="horizontal", level=level, keep=keep
            )
        case OutputFormat.GIF:
            image.gifsave(out, keep=keep, effort=10 if smallest else 7)
        case OutputFormat.HEIF:
            _save_heif(image, out, quality=quality, strip=strip)
        case _:
            raise ValueError(f"no image encoder for {target}")


def _save_heif(image: pyvips.Image, out: str, *, quality: int | None, strip: bool) -> None:
    """HEIF through pillow-heif (x265): 8-bit RGB(A) pixels, ICC, EXIF and XMP."""
    if image.bands < 3:
        image = image.colourspace("srgb")
    mode = "RGBA" if image.bands == 4 else "RGB"
    heif = pillow_heif.from_bytes(mode, (image.width, image.height), image.write_to_memory())
    metadata: dict[str, bytes] = {}
    if icc := _blob(image, "icc-profile-data"):
        metadata["icc_profile"] = icc
    if not strip and (exif := _blob(image, "exif-data")):
        metadata["exif"] = _exif_with_orientation(exif, int_field(image, "orientation", 1))
    if not strip and (xmp := _blob(image, "xmp-data")):
        metadata["xmp"] = xmp
    heif.save(
        out,
        quality=-1 if quality is None else quality,
        enc_params=HEIF_ENCODER_PARAMS,
        chroma=444 if quality is None else 420,
        **metadata,
    )


def _exif_with_orientation(exif_data: bytes, orientation: int) -> bytes:
    # libvips rewrites the tag itself when it saves; here the blob is still the source's.
    exif = Image.Exif()
    exif.load(exif_data)
    if orientation != 1 or _EXIF_ORIENTATION in exif:
        exif[_EXIF_ORIENTATION] = orientation
    return exif.tobytes()


def _blob(image: pyvips.Image, field: str) -> bytes | None:
    return bytes(image.get(field)) if image.get_typeof(field) else None


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
        _save(image, target, out, quality=quality, strip=spec.strip_metadata, smallest=True)
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
        _save(image, target, out, quality=None, strip=strip, smallest=True)
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
        _save(image, target, attempt, quality=quality, strip=strip)
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
