"""pdf-preview and image-to-pdf at converter level: real PDFs drawn by PDFium, real images."""

from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image

from convertly.converters.tools.documents import IMAGE_TO_PDF, PDF_PREVIEW
from convertly.errors import InvalidFieldError
from convertly.sniff import Kind
from tests.converters.conftest import (
    BLUE,
    GREEN,
    QUADRANTS,
    FakeLimits,
    assert_colours_close,
    quadrant_means,
    quadrants,
    write_animation,
    write_image,
)
from tests.converters.test_pdf import three_page_pdf
from tests.converters.tools_support import run_tool


def quadrant_pdf(directory: Path) -> Path:
    """A one-page PDF, 200 x 100 points, of flat quadrants (red, green / blue, white)."""
    source = write_image(directory, Kind.PNG, quadrants(200, 100))
    return Path(run_tool(IMAGE_TO_PDF, source, directory).files[0])


def test_pdf_preview_draws_the_asked_page_inside_the_box(tmp_path: Path, workdir: Path) -> None:
    pdf = three_page_pdf(tmp_path)  # 200 x 100 points: red, green, blue
    out = run_tool(PDF_PREVIEW, pdf, workdir, page=2, width=100, height=100, format="png")
    assert out.facts == {"page": 2, "pages": 3, "width": 100, "height": 50}
    with Image.open(out.files[0]) as image:
        assert (image.format, image.size) == ("PNG", (100, 50))
        assert_colours_close(quadrant_means(image), [GREEN] * 4, tolerance=6)


def test_pdf_preview_defaults_to_a_jpg_of_the_first_page_at_the_pdf_dpi(
    tmp_path: Path, workdir: Path
) -> None:
    pdf = quadrant_pdf(tmp_path)
    out = run_tool(PDF_PREVIEW, pdf, workdir, limits=FakeLimits(pdf_dpi=144))
    with Image.open(out.files[0]) as image:
        assert (image.format, image.size) == ("JPEG", (400, 200))
        assert_colours_close(quadrant_means(image), QUADRANTS, tolerance=12)
    assert out.files[0].name == "page-1.jpg"
    at_36_dpi = run_tool(PDF_PREVIEW, pdf, workdir, limits=FakeLimits(pdf_dpi=144), dpi=36)
    assert (at_36_dpi.facts["width"], at_36_dpi.facts["height"]) == (100, 50)


def test_pdf_preview_stays_under_the_pixel_limit(tmp_path: Path, workdir: Path) -> None:
    pdf = three_page_pdf(tmp_path)
    out = run_tool(PDF_PREVIEW, pdf, workdir, limits=FakeLimits(max_pixels=5000), width=1000,
                   format="webp")
    assert out.facts["width"] * out.facts["height"] <= 5000
    assert out.facts["width"] == pytest.approx(2 * out.facts["height"], abs=2)


def test_pdf_preview_refuses_a_page_past_the_end(tmp_path: Path, workdir: Path) -> None:
    with pytest.raises(InvalidFieldError, match="has 3 pages"):
        run_tool(PDF_PREVIEW, three_page_pdf(tmp_path), workdir, page=4)


def test_image_to_pdf_makes_a_page_per_frame(tmp_path: Path, workdir: Path) -> None:
    animation = write_animation(tmp_path, Kind.GIF, size=(80, 40))
    out = run_tool(IMAGE_TO_PDF, animation, workdir, quality="high")
    assert out.facts["pages"] == 3
    document = pdfium.PdfDocument(str(out.files[0]))
    try:
        assert [document[i].get_size() for i in range(3)] == [(80.0, 40.0)] * 3
        last = document[2].render(scale=1).to_pil()
        assert_colours_close(quadrant_means(last), [BLUE] * 4, tolerance=6)
    finally:
        document.close()
