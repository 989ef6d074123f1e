"""Raster images: jpeg png gif webp tiff bmp avif heif in; jpg png webp avif tiff gif heif out.

libvips does the work: `thumbnail` streams the file and shrinks JPEGs while decoding them.
What pyvips-binary cannot read (HEIF, BMP, APNG, AVIF sequences, ...: pillow.py) or write
(HEIF, APNG) goes through Pillow / pillow-heif and crosses to libvips as pixels in memory. A
TIFF or AVIF whose pixels libvips cannot decode is decoded with Pillow before it is called
corrupt. Animations stay animated as gif, webp and png (APNG); a target that holds one image
gets the first, and a note says what was left out.

This module picks the target, checks the compress options and the pixel limit, and runs the
steps: load.py reads the header and the pixels, shape.py fits colour, depth, crop and padding
to the target, save.py encodes, and compress.py reaches a target size and keeps whichever of
the re-encode and the source is smaller.
"""

from __future__ import annotations

from pathlib import Path

import pyvips

from convertly.converters.base import Limits, ProgressFn, Queue, no_progress, target_of
from convertly.converters.image.compress import Outcome, compress_image, jpeg_lossless
from convertly.converters.image.declared import check_declared
from convertly.converters.image.load import (
    PILLOW_KINDS,
    Header,
    failure,
    load,
    read_header,
    read_pillow_header,
    vips_decodes,
)
from convertly.converters.image.save import LOSSY_TARGETS, save
from convertly.converters.image.shape import frame_height, shape
from convertly.converters.pixels import check_pixels
from convertly.converters.registry import Registry
from convertly.converters.resize import plan_resize
from convertly.errors import CorruptFileError, InvalidFieldError, UnsupportedConversionError
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

# Animated GIF, WebP, PNG (APNG) and AVIF sequences; png output of an animation is an APNG.
_ANIMATED_SOURCES = frozenset({Kind.GIF, Kind.WEBP, Kind.PNG, Kind.AVIF})
_ANIMATED_TARGETS = frozenset({OutputFormat.GIF, OutputFormat.WEBP, OutputFormat.PNG})


class ImageConverter:
    """Converts and compresses raster images with libvips (see the module docstring)."""

    name = "image"

    def queue(self, source: Kind, target: OutputFormat) -> Queue:
        return Queue.IMAGE

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
        target = target_of(spec)
        if target not in TARGETS:
            raise UnsupportedConversionError(
                f"Images convert to {', '.join(TARGETS)}, not {target}."
            )
        check_declared(src, kind, limits)
        header = read_header(src, kind)
        out = workdir / f"output.{extension_for(target)}"
        if compress and spec.lossless and target is OutputFormat.JPG:
            check_pixels(limits, [(header.width, header.height)])
            return jpeg_lossless(src, spec, header, out)
        try:
            image, outcome = _encode(src, kind, header, spec, target, limits, out)
        except pyvips.Error as exc:
            if header.pillow or kind not in PILLOW_KINDS or vips_decodes(src, kind):
                raise failure(src, kind, header, target) from exc
            # libvips read the header but not the pixels: Pillow may read both.
            try:
                header = read_pillow_header(src, kind)
            except CorruptFileError:
                raise CorruptFileError() from exc
            try:
                image, outcome = _encode(src, kind, header, spec, target, limits, out)
            except pyvips.Error as again:
                raise failure(src, kind, header, target) from again
        notes = _lost(kind, header, target)
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


def _encode(
    src: Path,
    kind: Kind,
    header: Header,
    spec: FileSpec,
    target: OutputFormat,
    limits: Limits,
    out: Path,
) -> tuple[pyvips.Image, Outcome]:
    """Load, shape and save (or compress) with the decoder `header` names."""
    compress = spec.job_type is JobType.COMPRESS
    animated = _animated(kind, header, target)
    check_pixels(limits, [(header.width, header.height)] * (header.pages if animated else 1))
    plan = plan_resize(
        *header.oriented(spec.auto_orient), spec.resize, spec.resize_width, spec.resize_height
    )
    image = load(src, kind, header, plan, spec.auto_orient, animated)
    image = shape(image, plan, target, keep_cmyk=compress)
    if compress:
        return image, compress_image(image, target, src, kind, spec, header, out)
    quality = spec.compression if target in LOSSY_TARGETS else None
    save(image, target, out, quality=quality, strip=spec.strip_metadata)
    return image, Outcome(quality)


def _animated(kind: Kind, header: Header, target: OutputFormat) -> bool:
    return header.pages > 1 and kind in _ANIMATED_SOURCES and target in _ANIMATED_TARGETS


def _lost(kind: Kind, header: Header, target: OutputFormat) -> list[str]:
    """Notes for what the target cannot hold: the frames of an animation, the other pages of
    a TIFF, the other images of a HEIF file."""
    if header.pages < 2 or _animated(kind, header, target):
        return []
    if kind in _ANIMATED_SOURCES:
        return [f"Only the first frame of {header.pages} was kept: {target.value} holds no "
                "animation (gif, webp and png do)."]
    if kind is Kind.HEIF:
        return [f"Only the primary image was kept; the file holds {header.pages} images."]
    return [f"Only the first of {header.pages} pages was kept: {target.value} holds one "
            "image here (convert to pdf for a page each)."]


def register(registry: Registry) -> None:
    registry.register(ImageConverter(), SOURCES, TARGETS)


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
