"""SVG in and out: rasters traced to SVG, SVG drawn to rasters and PDF, SVG minified.

VectorConverter routes each pair. A raster is traced by `trace`, which runs trace.py's steps
(PDF pages are traced through it too). SVG is drawn here, through librsvg inside libvips,
from a buffer, after `safe_svg` (svgsafe.py) rewrote the document: entity declarations are
refused, and nothing outside the file (hrefs, CSS urls and imports, XInclude, stylesheet
instructions) survives, so no file or URL is ever read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pyvips

from convertly.converters.base import Limits, ProgressFn, Queue, no_progress, target_of
from convertly.converters.image import SOURCES as RASTER_SOURCES
from convertly.converters.image import TARGETS as RASTER_TARGETS
from convertly.converters.image import ImageConverter, read_header
from convertly.converters.image.declared import check_declared
from convertly.converters.pixels import fit
from convertly.converters.registry import Registry
from convertly.converters.resize import plan_resize
from convertly.converters.vector import trace as tracing
from convertly.converters.vector.pdfwrite import PageImage, images_to_pdf
from convertly.converters.vector.svgsafe import SafeSvg, safe_svg
from convertly.converters.vector.trace import on_white
from convertly.errors import CorruptFileError, InvalidFieldError, UnsupportedConversionError
from convertly.models import (
    ConvertedFile,
    FileSpec,
    JobType,
    OutputFormat,
    ResizePreset,
    SourceInfo,
    mime_for,
)
from convertly.sniff import Kind, sniff_file

SVG_TARGETS = (*RASTER_TARGETS, OutputFormat.PDF, OutputFormat.SVG)

PDF_RENDER_DPI = 192  # SVG pixels are 1/96 inch; a PDF page is drawn at twice that
_ANIMATED = frozenset({Kind.GIF, Kind.WEBP})


class VectorConverter:
    """Traces rasters to SVG, renders SVG to rasters and PDF, minifies SVG (module docstring)."""

    name = "vector"

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
        target = target_of(spec)
        if kind is Kind.SVG:
            if target is OutputFormat.SVG:
                return _minify(src, spec, workdir)
            if target is OutputFormat.PDF:
                return _svg_to_pdf(src, spec, workdir, limits)
            if target in RASTER_TARGETS:
                return _rasterise(src, spec, target, workdir, limits)
        elif kind in RASTER_SOURCES and target is OutputFormat.SVG:
            return trace(src, source, spec, workdir, limits, progress)
        raise UnsupportedConversionError(
            f"Converting {kind.label} to {target.value} is not "
            "supported by the vector converter."
        )


def register(registry: Registry) -> None:
    converter = VectorConverter()
    registry.register(converter, RASTER_SOURCES, [OutputFormat.SVG])
    registry.register(converter, [Kind.SVG], SVG_TARGETS)


# -- raster -> SVG ---------------------------------------------------------------------------


def trace(
    src: Path,
    source: SourceInfo,
    spec: FileSpec,
    workdir: Path,
    limits: Limits,
    progress: ProgressFn = no_progress,
) -> ConvertedFile:
    """Trace the raster image `src` (any kind ImageConverter reads) to `workdir`/output.svg."""
    kind = Kind(source.kind)
    check_declared(src, kind, limits)
    header = read_header(src, kind)
    width, height = header.oriented(spec.auto_orient)
    plan = plan_resize(width, height, spec.resize, spec.resize_width, spec.resize_height)
    scratch = workdir / "trace"
    scratch.mkdir(exist_ok=True)
    image = tracing.load_for_trace(src, source, spec, plan.width, plan.height, scratch, limits)
    progress(0.1)
    job = tracing.shape_for_trace(image, spec)
    traced = scratch / "trace-input.png"
    job.image.pngsave(str(traced), compression=1)
    out = workdir / "output.svg"
    tracing.run_vtracer(traced, out, job.params, limits.trace_timeout)
    progress(0.95)
    tracing.set_display_size(out, plan.width, plan.height, job.image.width, job.image.height)
    notes = [job.note]
    if header.pages > 1 and kind in _ANIMATED:
        notes.append("Only the first frame was traced: SVG holds no animation.")
    return ConvertedFile(
        path=str(out),
        format=OutputFormat.SVG.value,
        mime_type=mime_for(OutputFormat.SVG.value),
        width=plan.width,
        height=plan.height,
        notes=tuple(notes),
    )


# -- SVG -> raster, PDF, SVG -----------------------------------------------------------------


@dataclass(frozen=True)
class _Rendered:
    image: pyvips.Image
    notes: tuple[str, ...]


def _svg_bytes(src: Path) -> SafeSvg:
    return safe_svg(src.read_bytes(), external=False)


def _natural_size(svg: bytes) -> tuple[int, int]:
    try:
        header = pyvips.Image.svgload_buffer(svg)
        return header.width, header.height
    except pyvips.Error as exc:
        raise CorruptFileError("The SVG could not be read (librsvg rejected it).") from exc


def _render(rewrite: SafeSvg, width: int, height: int, limits: Limits) -> _Rendered:
    """Draw the SVG at `width` x `height` pixels (or smaller, to stay under max_pixels)."""
    notes: list[str] = []
    if rewrite.removed_references:
        notes.append(
            f"Removed {rewrite.removed_references} reference(s) to files or URLs outside the "
            "SVG: only what the file itself contains is drawn."
        )
    if width * height > limits.max_pixels:
        fitted = fit(width, height, limits.max_pixels)
        notes.append(
            f"Rendered at {fitted[0]}x{fitted[1]}: {width}x{height} is over this server's "
            f"limit of {limits.max_pixels:,} pixels."
        )
        width, height = fitted
    natural_w, _natural_h = _natural_size(rewrite.data)
    try:
        image = pyvips.Image.svgload_buffer(rewrite.data, scale=width / natural_w, unlimited=False)
        if (image.width, image.height) != (width, height):
            image = image.thumbnail_image(width, height=height, size="force")
        image = image.copy_memory()
    except pyvips.Error as exc:
        raise CorruptFileError("The SVG could not be drawn (librsvg rejected it).") from exc
    return _Rendered(image, tuple(notes))


def _rasterise(
    src: Path, spec: FileSpec, target: OutputFormat, workdir: Path, limits: Limits
) -> ConvertedFile:
    rewrite = _svg_bytes(src)
    natural_w, natural_h = _natural_size(rewrite.data)
    # Drawn straight at the preset's scale (vectors stay sharp); ImageConverter then crops,
    # pads and encodes as it does for any PNG.
    plan = plan_resize(natural_w, natural_h, spec.resize, spec.resize_width, spec.resize_height)
    rendered = _render(rewrite, plan.scaled_width, plan.scaled_height, limits)
    drawn = workdir / "rendered.png"
    rendered.image.pngsave(str(drawn), compression=1)
    inner = replace(spec, job_type=JobType.CONVERT, format=target)
    converted = ImageConverter().convert(drawn, sniff_file(drawn), inner, workdir, limits)
    return replace(converted, notes=rendered.notes + converted.notes)


def _svg_to_pdf(src: Path, spec: FileSpec, workdir: Path, limits: Limits) -> ConvertedFile:
    rewrite = _svg_bytes(src)
    natural_w, natural_h = _natural_size(rewrite.data)
    plan = plan_resize(natural_w, natural_h, spec.resize, spec.resize_width, spec.resize_height)
    # SVG pixels are 1/96 inch: the page keeps that size and is drawn at PDF_RENDER_DPI.
    sharpness = PDF_RENDER_DPI / 96
    rendered = _render(
        rewrite, round(plan.scaled_width * sharpness), round(plan.scaled_height * sharpness), limits
    )
    image = rendered.image
    factor = image.width / plan.scaled_width
    if plan.crops or plan.pads:
        image = _crop_or_pad(image, round(plan.width * factor), round(plan.height * factor))
    out = workdir / "output.pdf"
    written = images_to_pdf(
        [PageImage(image, dpi=96 * factor)], out, quality=spec.compression
    )
    return ConvertedFile(
        path=str(out),
        format=OutputFormat.PDF.value,
        mime_type=mime_for(OutputFormat.PDF.value),
        width=plan.width,
        height=plan.height,
        notes=(
            *rendered.notes,
            f"The PDF page is a picture of the SVG drawn at {image.width}x{image.height} "
            "pixels: its text and shapes are not selectable.",
            *written,
        ),
    )


def _crop_or_pad(image: pyvips.Image, width: int, height: int) -> pyvips.Image:
    """Centre-crop or centre on a white canvas to exactly `width` x `height`."""
    if image.width >= width and image.height >= height:
        return image.crop((image.width - width) // 2, (image.height - height) // 2, width, height)
    flat = on_white(image)
    return flat.embed(
        (width - image.width) // 2, (height - image.height) // 2, width, height,
        extend="background", background=[255] * flat.bands,
    )  # fmt: skip


def _minify(src: Path, spec: FileSpec, workdir: Path) -> ConvertedFile:
    """Compress an SVG: comments, processing instructions and idle whitespace go."""
    if spec.resize is not ResizePreset.ORIGINAL:
        raise InvalidFieldError("resize", "compress keeps the SVG as drawn; resize with convert.")
    data = src.read_bytes()
    rewrite = safe_svg(data, external=True, metadata=not spec.strip_metadata)
    width, height = _natural_size(rewrite.data)
    out = workdir / "output.svg"
    notes: list[str] = []
    if len(rewrite.data) < len(data):
        out.write_bytes(rewrite.data)
    else:
        out.write_bytes(data)
        notes.append("The SVG was already as small as minifying makes it; it was kept.")
    return ConvertedFile(
        path=str(out),
        format=OutputFormat.SVG.value,
        mime_type=mime_for(OutputFormat.SVG.value),
        width=width,
        height=height,
        notes=tuple(notes),
    )
