"""The document tools: pdf-preview (one page of a PDF drawn as an image) and image-to-pdf
(an image, every frame or page of it, as a PDF).

pdf-preview draws with PDFium at `dpi` (default CONVERTLY_PDF_DPI), or at the scale that
fits the page inside `width` x `height` (either alone keeps the aspect ratio), lowered to stay
under the pixel limit, and encodes through the image encoders. image-to-pdf is the PDF converter's
image-to-PDF path (`converters/vector/pdf.py`): a page per frame, photos as JPEG at
`quality`, flat graphics and transparency lossless.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pyvips

from convertly.converters.base import Limits, ProgressFn
from convertly.converters.image import SOURCES as RASTER_SOURCES
from convertly.converters.pixels import fit_scale
from convertly.converters.tools.base import Tool, ToolOutput
from convertly.converters.tools.raster import write_image
from convertly.converters.vector.pdf import PdfConverter, open_pdf
from convertly.converters.vector.pdfwrite import POINTS_PER_INCH
from convertly.errors import CorruptFileError, InvalidFieldError
from convertly.models import FileSpec, OutputFormat, SourceInfo
from convertly.sniff import Kind
from convertly.transforms.media import quality_point
from convertly.transforms.table import HEIGHT, QUALITY, WIDTH, Param, ParamKind
from convertly.transforms.values import Length

PREVIEW_FORMATS = ("jpg", "png", "webp", "avif")
IMAGE_TO_PDF_QUALITY = 85  # photos' JPEG quality inside the PDF when none is asked for

PAGE = Param("page", ParamKind.INTEGER, "Which page to draw, from 1.", low=1,
             high=100_000, default=1)
PREVIEW_FORMAT = Param("format", ParamKind.CHOICE, "The preview's format.", aliases=("f",),
                       choices=PREVIEW_FORMATS, synonyms=(("jpeg", "jpg"),), default="jpg")
DPI = Param("dpi", ParamKind.INTEGER, "Resolution the page is drawn at (18-1200); default "
            "CONVERTLY_PDF_DPI. width and height, when given, fit the drawing inside them.",
            aliases=("density", "resolution"), low=18, high=1200)
PREVIEW_WIDTH = Param(WIDTH.name, WIDTH.kind, "The preview fits inside this width: pixels, "
                      "or a percentage of the page drawn at CONVERTLY_PDF_DPI. With only "
                      "one of width and height the other keeps the aspect ratio.",
                      aliases=WIDTH.aliases, low=WIDTH.low, high=WIDTH.high)
PREVIEW_HEIGHT = Param(HEIGHT.name, HEIGHT.kind, "The preview fits inside this height.",
                       aliases=HEIGHT.aliases, low=HEIGHT.low, high=HEIGHT.high)


def pdf_preview(
    src: Path,
    source: SourceInfo,
    options: Mapping[str, Any],
    workdir: Path,
    limits: Limits,
    progress: ProgressFn,
) -> ToolOutput:
    """Draw page `page` of the PDF as `format`, fitted inside `width` x `height`."""
    document = open_pdf(src, limits)
    try:
        count = len(document)
        number: int = options["page"]
        if number > count:
            raise InvalidFieldError(
                "page", f"this PDF has {count} page{'s' if count > 1 else ''}; ask for a page "
                f"from 1 to {count}.",
            )
        document.init_forms()  # before the page loads, so that form fields are drawn
        page = document[number - 1]
        try:
            dpi = options.get("dpi") or limits.pdf_dpi
            image = _draw(page, dpi, options.get("width"), options.get("height"), limits)
        finally:
            page.close()
    finally:
        document.close()
    progress(0.6)
    target = OutputFormat(options["format"])
    out = write_image(image, target, workdir, f"page-{number}", options.get("quality"))
    return ToolOutput(
        files=[out],
        facts={"page": number, "pages": count, "width": image.width, "height": image.height},
    )


def _draw(page: pdfium.PdfPage, dpi: int, width: Length | None, height: Length | None,
          limits: Limits) -> pyvips.Image:  # fmt: skip
    """The page as sRGB pixels on white, at `dpi` fitted inside the box, lowered to stay
    under the pixel limit."""
    try:
        width_pt, height_pt = page.get_size()
        scale = dpi / POINTS_PER_INCH
        natural_w, natural_h = width_pt * scale, height_pt * scale
        fits = [
            length.pixels(round(natural)) / natural
            for length, natural in ((width, natural_w), (height, natural_h))
            if length is not None
        ]
        if fits:
            scale *= min(fits)
        pixels_w, pixels_h = max(1, round(width_pt * scale)), max(1, round(height_pt * scale))
        scale *= min(1.0, fit_scale(pixels_w, pixels_h, limits.max_pixels))
        bitmap = page.render(scale=scale, may_draw_forms=True, fill_color=(255, 255, 255, 255))
        picture = bitmap.to_pil().convert("RGB")
    except pdfium.PdfiumError as exc:
        raise CorruptFileError("The PDF page could not be drawn.") from exc
    image = pyvips.Image.new_from_memory(
        picture.tobytes(), picture.width, picture.height, 3, "uchar"
    )
    return image.copy(interpretation="srgb")


PDF_PREVIEW = Tool(
    name="pdf-preview",
    summary="Draw one page of a PDF as a jpg, png, webp or avif image.",
    sources=frozenset({Kind.PDF}),
    params=(PAGE, DPI, PREVIEW_WIDTH, PREVIEW_HEIGHT, PREVIEW_FORMAT, QUALITY),
    run=pdf_preview,
)


PDF_QUALITY = Param(QUALITY.name, QUALITY.kind, "JPEG quality of photo-like pages, 1-100 or "
                    "very_low ... very_high (flat graphics and transparency stay lossless).",
                    aliases=QUALITY.aliases, low=QUALITY.low, high=QUALITY.high,
                    choices=QUALITY.choices, default=IMAGE_TO_PDF_QUALITY)


def image_to_pdf(
    src: Path,
    source: SourceInfo,
    options: Mapping[str, Any],
    workdir: Path,
    limits: Limits,
    progress: ProgressFn,
) -> ToolOutput:
    """The image as a PDF: one page per frame (animations) or page (multi-page TIFF)."""
    quality = quality_point(options["quality"])
    spec = FileSpec(index=0, filename=src.name, format=OutputFormat.PDF, compression=quality)
    converted = PdfConverter().convert(src, source, spec, workdir, limits, progress)
    out = Path(converted.path).rename(workdir / "document.pdf")
    document = open_pdf(out, limits)
    try:
        pages = len(document)
    finally:
        document.close()
    return ToolOutput(
        files=[out],
        facts={"pages": pages, "width": converted.width, "height": converted.height,
               "notes": list(converted.notes)},
    )


IMAGE_TO_PDF = Tool(
    name="image-to-pdf",
    summary="An image as a PDF: a page for each frame or page, photos as JPEG, flat "
    "graphics and transparency lossless.",
    sources=frozenset(RASTER_SOURCES),
    params=(PDF_QUALITY,),
    run=image_to_pdf,
)
