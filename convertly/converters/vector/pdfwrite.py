"""Writing PDF pages: one page per image, photos as JPEG, flat graphics and transparency
lossless. Both the PDF converter (images -> PDF) and the SVG converter (SVG -> PDF) write
through here."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
import pyvips
from PIL import Image

from convertly.converters.vector.trace import is_flat_graphic
from convertly.errors import ConversionError

POINTS_PER_INCH = 72
MAX_PAGE_POINTS = 14_400  # the largest page side PDF readers accept (200 inches)


@dataclass(frozen=True)
class PageImage:
    """One page to write: `image` (8-bit sRGB or grey, maybe alpha) at `dpi` pixels per inch."""

    image: pyvips.Image
    dpi: float


def images_to_pdf(pages: Sequence[PageImage], out: Path, *, quality: int) -> list[str]:
    """Write one page per image to `out`; returns notes on the choices made.

    Photo-like pages are JPEG at `quality`; flat graphics and images with transparency are
    kept lossless. A page larger than PDF's 200-inch limit is given a higher resolution.
    """
    document = pdfium.PdfDocument.new()
    lossless = 0
    enlarged_dpi = False
    try:
        for page_image in pages:
            image = page_image.image
            dpi = max(page_image.dpi, max(image.width, image.height) * 72 / MAX_PAGE_POINTS)
            enlarged_dpi |= dpi > page_image.dpi
            width_pt = image.width * POINTS_PER_INCH / dpi
            height_pt = image.height * POINTS_PER_INCH / dpi
            page = document.new_page(width_pt, height_pt)
            picture = pdfium.PdfImage.new(document)
            if _has_transparency(image) or is_flat_graphic(image):
                picture.set_bitmap(pdfium.PdfBitmap.from_pil(_to_pil(image)))
                lossless += 1
            else:
                opaque = image.flatten(background=[255] * (image.bands - 1)) if (
                    image.hasalpha()
                ) else image  # fmt: skip
                jpeg = opaque.jpegsave_buffer(
                    Q=max(1, min(100, quality)), optimize_coding=True, keep="none"
                )
                picture.load_jpeg(io.BytesIO(jpeg), inline=True)
            picture.set_matrix(pdfium.PdfMatrix().scale(width_pt, height_pt))
            page.insert_obj(picture)
            page.gen_content()
            page.close()
        document.save(str(out))
    except (pdfium.PdfiumError, pyvips.Error) as exc:
        raise ConversionError("The PDF could not be written.") from exc
    finally:
        document.close()
    notes = []
    if lossless:
        which = "all pages" if lossless == len(pages) else f"{lossless} of {len(pages)} pages"
        notes.append(
            f"Kept {which} lossless (flat colours or transparency); photos are JPEG at "
            f"quality {quality}."
        )
    if enlarged_dpi:
        notes.append("Pages larger than 200 inches were given a higher resolution to fit.")
    return notes


def _has_transparency(image: pyvips.Image) -> bool:
    return bool(image.hasalpha()) and image[image.bands - 1].min() < 255


def _to_pil(image: pyvips.Image) -> Image.Image:
    if not _has_transparency(image) and image.hasalpha():
        image = image[: image.bands - 1]
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[image.bands]
    picture = Image.frombytes(mode, (image.width, image.height), image.write_to_memory())
    return picture.convert("RGBA") if mode == "LA" else picture
