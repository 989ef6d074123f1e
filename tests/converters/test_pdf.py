from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
import pyvips
from PIL import Image

from convertly.converters import image as image_module
from convertly.converters import process
from convertly.converters.registry import Registry
from convertly.converters.vector import converter as vector_module
from convertly.converters.vector.pdf import PDF_TARGETS, PdfConverter, register
from convertly.converters.vector.pdfwrite import PageImage, images_to_pdf
from convertly.errors import (
    CorruptFileError,
    EncryptedFileError,
    InvalidFieldError,
    TooManyPagesError,
    UnsupportedConversionError,
)
from convertly.models import JobType, OutputFormat, ResizePreset
from convertly.sniff import Kind
from tests.converters.conftest import (
    BLUE,
    GREEN,
    QUADRANTS,
    RED,
    FakeLimits,
    assert_colours_close,
    noisy,
    quadrant_means,
    quadrants,
    run_converter,
    write_animation,
    write_image,
)

F = OutputFormat
PAGE_COLOURS = (RED, GREEN, BLUE)


# run(src, target, workdir, limits=..., **FileSpec fields)
run = functools.partial(run_converter, PdfConverter())


def pages_of(path: Path | str) -> list[tuple[tuple[float, float], Image.Image, list[str]]]:
    """Each page's size in points, its pixels at 72 dpi and its images' PDF filters."""
    document = pdfium.PdfDocument(str(path))
    try:
        pages = []
        for index in range(len(document)):
            page = document[index]
            filters = [
                name
                for obj in page.get_objects()
                if isinstance(obj, pdfium.PdfImage)
                for name in obj.get_filters()
            ]
            pages.append((page.get_size(), page.render(scale=1).to_pil().convert("RGB"), filters))
        return pages
    finally:
        document.close()


def centre(image: Image.Image) -> tuple[int, ...]:
    x, y = image.width // 2, image.height // 2
    return tuple(image.convert("RGB").crop((x, y, x + 1, y + 1)).tobytes())


def three_page_pdf(directory: Path, size: tuple[int, int] = (200, 100)) -> Path:
    """Pages filled red, green and blue, each `size` points (written by images_to_pdf)."""
    path = directory / "three.pdf"
    pages = [
        PageImage(pyvips.Image.black(*size, bands=3).new_from_image(list(colour)), dpi=72)
        for colour in PAGE_COLOURS
    ]
    images_to_pdf(pages, path, quality=90)
    return path


# -- registration ----------------------------------------------------------------------------


def test_registers_next_to_the_image_and_vector_converters() -> None:
    registry = Registry()
    image_module.register(registry)
    vector_module.register(registry)
    register(registry)
    for kind in image_module.SOURCES:
        assert registry.find(kind, F.PDF).name == "pdf"
    assert set(registry.targets_for(Kind.PDF)) == set(PDF_TARGETS)


def test_refuses_pairs_it_does_not_handle(tmp_path: Path, workdir: Path) -> None:
    with pytest.raises(UnsupportedConversionError):
        run(write_image(tmp_path, Kind.PNG, quadrants(20, 20)), F.PNG, workdir)


# -- images -> PDF ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", image_module.SOURCES)
def test_every_raster_kind_becomes_a_one_page_pdf(
    kind: Kind, tmp_path: Path, workdir: Path
) -> None:
    src = write_image(tmp_path, kind, quadrants(120, 80))
    result = run(src, F.PDF, workdir)
    assert (result.format, result.mime_type) == ("pdf", "application/pdf")
    [(size, drawn, _filters)] = pages_of(result.path)
    assert size == pytest.approx((120, 80))  # 72 dpi: a pixel is a point
    assert_colours_close(quadrant_means(drawn), QUADRANTS, tolerance=16)


def test_photos_are_jpeg_and_flat_graphics_lossless(tmp_path: Path, workdir: Path) -> None:
    photo = write_image(tmp_path, Kind.PNG, noisy(300, 200))
    [(_, _, filters)] = pages_of(run(photo, F.PDF, workdir).path)
    assert filters == ["DCTDecode"]
    flat = tmp_path / "flat.png"
    quadrants(300, 200).save(flat)
    result = run(flat, F.PDF, workdir)
    [(_, drawn, filters)] = pages_of(result.path)
    assert filters == ["FlateDecode"]
    assert_colours_close(quadrant_means(drawn), QUADRANTS, tolerance=0)
    assert any("lossless" in note for note in result.notes)


def test_compression_is_the_jpeg_quality(tmp_path: Path, workdir: Path) -> None:
    src = write_image(tmp_path, Kind.JPEG, noisy(400, 300))
    sizes = []
    for quality in (30, 95):
        where = workdir / str(quality)
        where.mkdir()
        result = run(src, F.PDF, where, compression=quality)
        assert result.applied_quality == quality
        sizes.append(Path(result.path).stat().st_size)
    assert sizes[0] < sizes[1] / 2


def test_transparency_survives(tmp_path: Path, workdir: Path) -> None:
    picture = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    picture.paste((*RED, 255), (25, 25, 75, 75))
    src = write_image(tmp_path, Kind.PNG, picture)
    document = pdfium.PdfDocument(run(src, F.PDF, workdir).path)
    try:
        drawn = document[0].render(scale=1, fill_color=(0, 0, 0, 0)).to_pil()
    finally:
        document.close()
    assert drawn.mode == "RGBA"
    assert drawn.getchannel("A").crop((0, 0, 20, 20)).getextrema() == (0, 0)
    assert_colours_close([centre(drawn)[:3]], [RED], tolerance=0)


def test_scan_resolution_sets_the_page_size(tmp_path: Path, workdir: Path) -> None:
    src = write_image(tmp_path, Kind.JPEG, quadrants(600, 300), dpi=(300, 300))
    [(size, _, _)] = pages_of(run(src, F.PDF, workdir).path)
    assert size == pytest.approx((144, 72))  # 2 x 1 inches


def test_every_frame_of_an_animation_is_a_page(tmp_path: Path, workdir: Path) -> None:
    result = run(write_animation(tmp_path, Kind.GIF), F.PDF, workdir)
    pages = pages_of(result.path)
    assert [size for size, _, _ in pages] == [(80, 40)] * 3
    assert_colours_close([centre(drawn) for _, drawn, _ in pages], PAGE_COLOURS, tolerance=10)
    assert any("3 frames" in note for note in result.notes)


def multipage_tiff(directory: Path) -> Path:
    path = directory / "pages.tiff"
    pages = [Image.new("RGB", (60 + 20 * i, 40), colour) for i, colour in enumerate(PAGE_COLOURS)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    return path


def test_every_tiff_page_is_a_page_of_its_own_size(tmp_path: Path, workdir: Path) -> None:
    pages = pages_of(run(multipage_tiff(tmp_path), F.PDF, workdir).path)
    assert [size for size, _, _ in pages] == [(60, 40), (80, 40), (100, 40)]
    assert_colours_close([centre(drawn) for _, drawn, _ in pages], PAGE_COLOURS, tolerance=0)


def test_too_many_frames_is_refused(tmp_path: Path, workdir: Path) -> None:
    with pytest.raises(TooManyPagesError):
        run(multipage_tiff(tmp_path), F.PDF, workdir, limits=FakeLimits(max_pdf_pages=2))


def test_resize_preset_applies_to_the_page_image(tmp_path: Path, workdir: Path) -> None:
    src = write_image(tmp_path, Kind.PNG, quadrants(2400, 1200))
    result = run(src, F.PDF, workdir, resize=ResizePreset.WEBSITE)
    assert (result.width, result.height) == (1920, 960)
    [(size, drawn, _)] = pages_of(result.path)
    assert size == pytest.approx((1920, 960))
    assert_colours_close(quadrant_means(drawn), QUADRANTS, tolerance=0)


# -- PDF -> images ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", image_module.TARGETS)
def test_pdf_page_to_every_raster_format(
    target: OutputFormat, tmp_path: Path, workdir: Path
) -> None:
    result = run(three_page_pdf(tmp_path), target, workdir, page=2)
    with Image.open(result.path) as decoded:
        assert decoded.size == (200, 100)  # 72 dpi in FakeLimits
        assert_colours_close([centre(decoded)[:3]], [GREEN], tolerance=12)
    assert "Page 2 of 3." in result.notes


def test_pdf_page_to_svg_is_traced(tmp_path: Path, workdir: Path) -> None:
    result = run(three_page_pdf(tmp_path), F.SVG, workdir, page=3)
    assert result.mime_type == "image/svg+xml"
    drawn = pyvips.Image.svgload_buffer(Path(result.path).read_bytes())
    assert (drawn.width, drawn.height) == (200, 100)
    assert_colours_close([drawn.getpoint(100, 50)[:3]], [BLUE], tolerance=12)
    assert result.notes[0] == "Page 3 of 3."


def test_pages_render_at_the_configured_dpi(tmp_path: Path, workdir: Path) -> None:
    result = run(three_page_pdf(tmp_path), F.PNG, workdir, limits=FakeLimits(pdf_dpi=144))
    assert (result.width, result.height) == (400, 200)


def test_dpi_is_lowered_to_stay_under_the_pixel_limit(tmp_path: Path, workdir: Path) -> None:
    limits = FakeLimits(pdf_dpi=300, max_pixels=20_000)
    result = run(three_page_pdf(tmp_path), F.PNG, workdir, limits=limits)
    assert result.width is not None and result.height is not None
    assert result.width * result.height <= 20_000
    assert result.width == pytest.approx(2 * result.height, abs=1)
    assert any("dpi" in note for note in result.notes)


def test_resize_preset_renders_at_the_needed_scale(tmp_path: Path, workdir: Path) -> None:
    fields: dict[str, Any] = {"resize": ResizePreset.WIDTH, "resize_width": 100}
    result = run(three_page_pdf(tmp_path), F.PNG, workdir, **fields)
    assert (result.width, result.height) == (100, 50)
    square = run(three_page_pdf(tmp_path), F.JPG, workdir, resize=ResizePreset.INSTAGRAM)
    with Image.open(square.path) as decoded:
        assert decoded.width == decoded.height


def test_page_beyond_the_count_names_the_count(tmp_path: Path, workdir: Path) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        run(three_page_pdf(tmp_path), F.PNG, workdir, page=4)
    assert caught.value.field == "page"
    assert "3 pages" in caught.value.message


def test_pdf_with_too_many_pages_is_refused(tmp_path: Path, workdir: Path) -> None:
    with pytest.raises(TooManyPagesError) as caught:
        run(three_page_pdf(tmp_path), F.PNG, workdir, limits=FakeLimits(max_pdf_pages=2))
    assert caught.value.detail == {"pages": 3, "maxPages": 2}


def test_corrupt_pdf(tmp_path: Path, workdir: Path) -> None:
    src = tmp_path / "broken.pdf"
    src.write_bytes(b"%PDF-1.7\nthis is not a PDF body\n")
    with pytest.raises(CorruptFileError):
        run(src, F.PNG, workdir)


def encrypted_pdf(directory: Path) -> Path:
    out = directory / "locked.pdf"
    process.run(
        [
            process.which("gs"), "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dQUIET",
            "-sDEVICE=pdfwrite", "-sOwnerPassword=owner", "-sUserPassword=user",
            f"-sOutputFile={out}", three_page_pdf(directory),
        ],
        timeout=60,
    )  # fmt: skip
    return out


def test_encrypted_pdf_is_refused_clearly(tmp_path: Path, workdir: Path) -> None:
    with pytest.raises(EncryptedFileError) as caught:
        run(encrypted_pdf(tmp_path), F.PNG, workdir)
    assert "password" in caught.value.message


# -- PDF -> PDF ------------------------------------------------------------------------------


def photo_pdf(directory: Path) -> Path:
    """Two pages of 300 dpi photos at JPEG quality 95, with an Info dictionary."""
    path = directory / "photos.pdf"
    pages = [noisy(1200, 900), noisy(900, 1200)]
    pages[0].save(
        path, save_all=True, append_images=pages[1:], quality=95, resolution=300,
        title="Secret plans", author="Alice",
    )  # fmt: skip
    return path


def test_compress_shrinks_a_pdf_of_photos(tmp_path: Path, workdir: Path) -> None:
    src = photo_pdf(tmp_path)
    result = run(src, None, workdir, job_type=JobType.COMPRESS)
    assert Path(result.path).stat().st_size < src.stat().st_size / 2
    assert [size for size, _, _ in pages_of(result.path)] == [(288, 216), (216, 288)]
    document = pdfium.PdfDocument(result.path)
    try:
        assert document.get_metadata_dict()["Title"] == "Secret plans"
    finally:
        document.close()


def test_compress_can_strip_metadata(tmp_path: Path, workdir: Path) -> None:
    result = run(photo_pdf(tmp_path), None, workdir, job_type=JobType.COMPRESS, strip_metadata=True)
    document = pdfium.PdfDocument(result.path)
    try:
        metadata = document.get_metadata_dict()
        assert len(document) == 2
    finally:
        document.close()
    assert metadata.get("Title", "") == "" and metadata.get("Author", "") == ""
    data = Path(result.path).read_bytes()
    assert b"Secret plans" not in data and b"/Metadata" not in data


def test_compress_keeps_a_pdf_it_cannot_shrink(tmp_path: Path, workdir: Path) -> None:
    src = three_page_pdf(tmp_path, size=(20, 10))
    result = run(src, None, workdir, job_type=JobType.COMPRESS)
    assert Path(result.path).read_bytes() == src.read_bytes()
    assert any("original was kept" in note for note in result.notes)


def test_compress_refuses_encrypted_pdfs(tmp_path: Path, workdir: Path) -> None:
    with pytest.raises(EncryptedFileError):
        run(encrypted_pdf(tmp_path), None, workdir, job_type=JobType.COMPRESS)


def test_written_pdf_opens_in_pillow_too(tmp_path: Path) -> None:
    # The writer's output is a plain PDF that other readers accept (Pillow's parser here).
    from PIL import PdfParser

    parsed = PdfParser.PdfParser(str(three_page_pdf(tmp_path)))
    try:
        assert len(parsed.pages) == 3
    finally:
        parsed.close()
