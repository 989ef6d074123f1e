"""PDF: images to PDF (a page per frame), PDF pages to images and SVG, PDF compression.

pypdfium2 (PDFium) renders pages and writes PDFs: a photo-like page is embedded as a JPEG at
`spec.compression` (DCTDecode, the JPEG's bytes as they are), a flat graphic or one with
transparency losslessly (FlateDecode, with a soft mask for the alpha). Each page is as large
as its image at the image's resolution (72 dpi unless the file says more, as scans do).

Compressing a PDF runs Ghostscript's pdfwrite (`apt-get install ghostscript`): PDFium's own
save rewrites the file without shrinking anything (measured: +18 bytes on a 4.4 MB PDF).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pypdfium2 as pdfium
import pyvips
from PIL import Image

from convertly.converters import process
from convertly.converters.base import Limits, ProgressFn, Queue, no_progress, target_of
from convertly.converters.image import SOURCES as RASTER_SOURCES
from convertly.converters.image import TARGETS as RASTER_TARGETS
from convertly.converters.image import ImageConverter, int_field
from convertly.converters.image.declared import check_declared
from convertly.converters.pixels import check_pixels, fit, fit_scale
from convertly.converters.registry import Registry
from convertly.converters.resize import ResizePlan, plan_resize
from convertly.converters.vector.converter import trace
from convertly.converters.vector.pdfwrite import POINTS_PER_INCH, PageImage, images_to_pdf
from convertly.errors import (
    CorruptFileError,
    EncryptedFileError,
    InvalidFieldError,
    TooManyPagesError,
    UnsupportedConversionError,
)
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

PDF_TARGETS = (*RASTER_TARGETS, OutputFormat.SVG, OutputFormat.PDF)
MAX_SOURCE_DPI = 1200  # a resolution above this is taken for a broken header
GHOSTSCRIPT = "gs"
COMPRESS_TIMEOUT = 300  # seconds Ghostscript may take to rewrite one PDF
# compression -> Ghostscript preset: images downsampled to 72, 150, 300 or 300 dpi at
# rising JPEG quality. Measured on a 3-page PDF of 300 dpi photos (4.4 MB): /screen 116 KB,
# /ebook 348 KB (0.4 s), /printer unchanged.
GS_PRESETS = ((50, "/screen"), (85, "/ebook"), (95, "/printer"), (100, "/prepress"))
# Info entries blanked when metadata is stripped (Ghostscript writes its own Producer).
INFO_KEYS = ("Title", "Author", "Subject", "Keywords", "Creator")

_PILLOW_SOURCES = frozenset({Kind.HEIF, Kind.BMP})
_STACKED_FRAMES = frozenset({Kind.GIF, Kind.WEBP})  # libvips loads them as one tall image


class PdfConverter:
    """Images to PDF, PDF to images and SVG, PDF compression (see the module docstring)."""

    name = "pdf"

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
        if kind is Kind.PDF and target is OutputFormat.PDF:
            return _compress(src, spec, workdir, limits)
        if kind is Kind.PDF and target in (*RASTER_TARGETS, OutputFormat.SVG):
            return _pdf_to_image(src, spec, target, workdir, limits, progress)
        if kind in RASTER_SOURCES and target is OutputFormat.PDF:
            return _image_to_pdf(src, source, spec, workdir, limits, progress)
        raise UnsupportedConversionError(
            f"Converting {kind.label} to {target.value} is not "
            "supported by the PDF converter."
        )


def register(registry: Registry) -> None:
    converter = PdfConverter()
    registry.register(converter, RASTER_SOURCES, [OutputFormat.PDF])
    registry.register(converter, [Kind.PDF], PDF_TARGETS)


# -- writing ---------------------------------------------------------------------------------


# -- images -> PDF ---------------------------------------------------------------------------


def _image_to_pdf(
    src: Path,
    source: SourceInfo,
    spec: FileSpec,
    workdir: Path,
    limits: Limits,
    progress: ProgressFn,
) -> ConvertedFile:
    kind = Kind(source.kind)
    check_declared(src, kind, limits)
    if kind in _PILLOW_SOURCES:
        frames = [_pillow_frame(src, source, spec, workdir, limits)]
    else:
        frames = _vips_frames(src, kind, spec, limits)
    progress(0.5)
    out = workdir / "output.pdf"
    notes = images_to_pdf(frames, out, quality=spec.compression)
    if len(frames) > 1:
        notes.insert(0, f"One page for each of the {len(frames)} frames or pages.")
    first = frames[0].image
    return ConvertedFile(
        path=str(out),
        format=OutputFormat.PDF.value,
        mime_type=mime_for(OutputFormat.PDF.value),
        applied_quality=spec.compression,
        width=first.width,
        height=first.height,
        notes=tuple(notes),
    )


def _pillow_frame(
    src: Path, source: SourceInfo, spec: FileSpec, workdir: Path, limits: Limits
) -> PageImage:
    """HEIF and BMP (which libvips here cannot read) through ImageConverter, as a PNG."""
    inner = replace(spec, job_type=JobType.CONVERT, format=OutputFormat.PNG)
    scratch = workdir / "frames"
    scratch.mkdir(exist_ok=True)
    converted = ImageConverter().convert(src, source, inner, scratch, limits)
    image = _normalise(pyvips.Image.new_from_file(converted.path))
    return PageImage(image, dpi=POINTS_PER_INCH)


def _vips_frames(src: Path, kind: Kind, spec: FileSpec, limits: Limits) -> list[PageImage]:
    """Every frame (animation) or page (TIFF), oriented, in sRGB, shaped by the preset."""
    try:
        header = _open(src, kind)
        pages = int_field(header, "n-pages", 1)
        _check_pages(pages, limits, what="frames or pages")
        if pages > 1 and kind in _STACKED_FRAMES:
            stacked = _open(src, kind, n=-1)
            height = stacked.height // pages
            check_pixels(limits, [(stacked.width, height)] * pages)
            loaded = [stacked.crop(0, i * height, stacked.width, height) for i in range(pages)]
        else:
            loaded = [_open(src, kind, page=i) if pages > 1 else header for i in range(pages)]
            check_pixels(limits, [(p.width, p.height) for p in loaded])
        frames = []
        for frame in loaded:
            dpi = _dpi(frame)
            if spec.auto_orient:
                frame = frame.autorot()
            frame = _normalise(frame)
            plan = plan_resize(
                frame.width, frame.height, spec.resize, spec.resize_width, spec.resize_height
            )
            if not plan.unchanged:
                frame, dpi = _shape(frame, plan), POINTS_PER_INCH
            frames.append(PageImage(frame.copy_memory(), dpi))
        return frames
    except pyvips.Error as exc:
        raise CorruptFileError() from exc


def _open(src: Path, kind: Kind, **options: int) -> pyvips.Image:
    # libtiff reports a truncated strip as an error, not as truncation.
    fail_on = "error" if kind is Kind.TIFF else "truncated"
    return pyvips.Image.new_from_source(
        pyvips.Source.new_from_file(str(src)), "", fail_on=fail_on, **options
    )


def _dpi(image: pyvips.Image) -> float:
    """The image's resolution when its header states a plausible one, else 72 dpi."""
    dpi = float(image.xres) * 25.4  # libvips keeps pixels per millimetre
    return dpi if POINTS_PER_INCH <= dpi <= MAX_SOURCE_DPI else POINTS_PER_INCH


def _normalise(image: pyvips.Image) -> pyvips.Image:
    """8-bit sRGB or grey, with its alpha if it has one."""
    if image.interpretation == "cmyk":
        image = image.icc_transform("srgb", input_profile="cmyk", embedded=True)
    grey = image.bands < 3
    if image.format != "uchar" or image.interpretation not in ("srgb", "b-w"):
        image = image.colourspace("b-w" if grey else "srgb")
    return image.cast("uchar")


def _shape(image: pyvips.Image, plan: ResizePlan) -> pyvips.Image:
    if plan.scales:
        image = image.thumbnail_image(
            plan.scaled_width, height=plan.scaled_height, size="force", no_rotate=True
        )
    if plan.crops:
        left, top = plan.crop_offset
        image = image.crop(left, top, plan.width, plan.height)
    if plan.pads:
        left, top = plan.pad_offset
        if image.hasalpha():
            image = image.flatten(background=[255] * (image.bands - 1))
        image = image.embed(
            left, top, plan.width, plan.height,
            extend="background", background=[255] * image.bands,
        )  # fmt: skip
    return image


def _check_pages(pages: int, limits: Limits, *, what: str) -> None:
    if pages > limits.max_pdf_pages:
        raise TooManyPagesError(
            f"The file has {pages} {what}, over this server's limit of "
            f"{limits.max_pdf_pages} (CONVERTLY_MAX_PDF_PAGES); split it and send the parts.",
            detail={"pages": pages, "maxPages": limits.max_pdf_pages},
        )


# -- PDF -> images ---------------------------------------------------------------------------


def read_pdf(src: Path) -> pdfium.PdfDocument:
    """Open a PDF; encrypted and corrupt files raise clearly. Nothing is checked yet."""
    try:
        return pdfium.PdfDocument(str(src))
    except pdfium.PdfiumError as exc:
        if exc.err_code in (pdfium.raw.FPDF_ERR_PASSWORD, pdfium.raw.FPDF_ERR_SECURITY):
            raise EncryptedFileError(
                "The PDF is password-protected (encrypted); remove the password and send it again."
            ) from exc
        raise CorruptFileError("The PDF is damaged or not a PDF and cannot be read.") from exc


def open_pdf(src: Path, limits: Limits) -> pdfium.PdfDocument:
    """Open a PDF with its page count checked; encrypted and corrupt files raise clearly."""
    document = read_pdf(src)
    pages = len(document)
    if pages == 0:
        document.close()
        raise CorruptFileError("The PDF has no pages.")
    try:
        _check_pages(pages, limits, what="pages")
    except TooManyPagesError:
        document.close()
        raise
    return document


def _pdf_to_image(
    src: Path,
    spec: FileSpec,
    target: OutputFormat,
    workdir: Path,
    limits: Limits,
    progress: ProgressFn,
) -> ConvertedFile:
    document = open_pdf(src, limits)
    try:
        count = len(document)
        if not 1 <= spec.page <= count:
            raise InvalidFieldError(
                "page",
                f"this PDF has {count} page{'s' if count > 1 else ''}; ask for a page from 1 "
                f"to {count}.",
            )
        drawn = workdir / "page.png"
        render_note = _render_page(document, spec, limits, drawn)
    finally:
        document.close()
    progress(0.3)
    notes = [f"Page {spec.page} of {count}." if count > 1 else "The PDF's only page."]
    if render_note:
        notes.append(render_note)
    inner = replace(spec, job_type=JobType.CONVERT, format=target)
    if target is OutputFormat.SVG:
        converted = trace(drawn, sniff_file(drawn), inner, workdir, limits)
    else:
        converted = ImageConverter().convert(drawn, sniff_file(drawn), inner, workdir, limits)
    return replace(converted, notes=(*notes, *converted.notes))


def _render_page(
    document: pdfium.PdfDocument, spec: FileSpec, limits: Limits, out: Path
) -> str | None:
    """Draw page `spec.page` to `out` (PNG) at the scale the preset needs; returns a note."""
    document.init_forms()  # before the page loads, so that form fields are drawn
    page = document[spec.page - 1]
    note = None
    try:
        width_pt, height_pt = page.get_size()
        scale = limits.pdf_dpi / POINTS_PER_INCH
        width, height = max(1, round(width_pt * scale)), max(1, round(height_pt * scale))
        plan = plan_resize(width, height, spec.resize, spec.resize_width, spec.resize_height)
        if plan.scales:
            scale *= plan.scaled_width / width
            width, height = plan.scaled_width, plan.scaled_height
        shrink = fit_scale(width, height, limits.max_pixels)
        if shrink < 1:
            scale *= shrink
            width, height = fit(width, height, limits.max_pixels)
            note = (
                f"Rendered at {round(scale * POINTS_PER_INCH)} dpi ({width}x{height}) to stay "
                f"under this server's limit of {limits.max_pixels:,} pixels."
            )
        bitmap = page.render(scale=scale, may_draw_forms=True, fill_color=(255, 255, 255, 255))
        picture = bitmap.to_pil()
        if picture.size != (width, height):
            picture = picture.resize((width, height), Image.Resampling.LANCZOS)
        picture.save(out, format="PNG", compress_level=1)
    except pdfium.PdfiumError as exc:
        raise CorruptFileError(f"Page {spec.page} of the PDF could not be drawn.") from exc
    finally:
        page.close()
    return note


# -- PDF -> PDF ------------------------------------------------------------------------------


def _compress(src: Path, spec: FileSpec, workdir: Path, limits: Limits) -> ConvertedFile:
    """Rewrite the PDF with Ghostscript, images downsampled and re-compressed."""
    if spec.resize is not ResizePreset.ORIGINAL:
        raise InvalidFieldError("resize", "compress keeps PDF pages as they are.")
    open_pdf(src, limits).close()  # encrypted, corrupt or too long: say so before rewriting
    preset = next(name for top, name in GS_PRESETS if spec.compression <= top)
    out = workdir / "output.pdf"
    argv: list[str | Path] = [
        process.which(GHOSTSCRIPT), "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dQUIET",
        "-sDEVICE=pdfwrite", f"-dPDFSETTINGS={preset}", "-dCompatibilityLevel=1.5",
        f"-sOutputFile={out}",
    ]  # fmt: skip
    if spec.strip_metadata:
        argv += ["-dOmitXMP", "-dOmitInfoDate", "-dOmitID"]
    argv += ["-f", src]
    if spec.strip_metadata:
        blanks = " ".join(f"/{key} ()" for key in INFO_KEYS)
        argv += ["-c", f"[ {blanks} /DOCINFO pdfmark"]
    process.run(argv, timeout=COMPRESS_TIMEOUT, cwd=workdir)
    notes = [f"Rewritten with Ghostscript's {preset[1:]} settings (images resampled)."]
    if out.stat().st_size >= src.stat().st_size:
        if spec.strip_metadata:
            notes.append("The file is larger than the original: removing metadata needed it.")
        else:
            out.write_bytes(src.read_bytes())
            notes = ["Rewriting made the PDF larger, so the original was kept."]
    return ConvertedFile(
        path=str(out),
        format=OutputFormat.PDF.value,
        mime_type=mime_for(OutputFormat.PDF.value),
        notes=tuple(notes),
    )
