from __future__ import annotations

import functools
import http.server
import io
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
import pyvips
from PIL import Image, ImageDraw

from convertly.converters import image as image_module
from convertly.converters.registry import Registry
from convertly.converters.vector import pdf as pdf_module
from convertly.converters.vector.converter import (
    SVG_TARGETS,
    VectorConverter,
    register,
)
from convertly.converters.vector.svgsafe import safe_svg
from convertly.converters.vector.trace import otsu_threshold
from convertly.errors import (
    ConversionTimeoutError,
    CorruptFileError,
    UnsupportedConversionError,
)
from convertly.models import JobType, OutputFormat, ResizePreset
from convertly.sniff import Kind
from tests.converters.conftest import (
    BLUE,
    GREEN,
    QUADRANTS,
    RED,
    WHITE,
    FakeLimits,
    assert_colours_close,
    noisy,
    quadrant_means,
    quadrants,
    run_converter,
    write_animation,
    write_image,
)
from tests.origin import loopback_origin

F = OutputFormat
SVG_NS = "{http://www.w3.org/2000/svg}"
RASTER_KINDS = image_module.SOURCES
RASTER_FORMATS = image_module.TARGETS


# run(src, target, workdir, limits=..., **FileSpec fields)
run = functools.partial(run_converter, VectorConverter())


def render_svg(path: Path, scale: float = 1.0) -> Image.Image:
    """Draw an SVG the converter wrote, with libvips (librsvg), as an RGBA Pillow image."""
    drawn = pyvips.Image.svgload_buffer(path.read_bytes(), scale=scale)
    return Image.open(io.BytesIO(drawn.pngsave_buffer())).convert("RGBA")


def on_white(image: Image.Image) -> Image.Image:
    background = Image.new("RGBA", image.size, (*WHITE, 255))
    return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")


def svg_root(path: Path) -> ET.Element:
    root = ET.fromstring(path.read_bytes())
    assert root.tag == f"{SVG_NS}svg"
    return root


def write_svg(directory: Path, body: str, *, width: int = 200, height: int = 100) -> Path:
    path = directory / "drawing.svg"
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">{body}</svg>'
    )
    return path


def quadrant_svg(directory: Path, width: int = 200, height: int = 100) -> Path:
    """The SVG twin of conftest.quadrants(): red, green / blue, white."""
    w, h = width / 2, height / 2
    rects = "".join(
        f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="rgb{colour}"/>'
        for (x, y), colour in zip(((0, 0), (w, 0), (0, h), (w, h)), QUADRANTS, strict=True)
    )
    return write_svg(directory, rects, width=width, height=height)


def red_png(directory: Path) -> Path:
    path = directory / "red.png"
    Image.new("RGB", (100, 100), RED).save(path)
    return path


def pixel(image: Image.Image, x: int, y: int) -> tuple[int, ...]:
    return tuple(image.crop((x, y, x + 1, y + 1)).tobytes())


def red_share(image: Image.Image) -> float:
    data = image.convert("RGB").tobytes()
    pixels = zip(data[0::3], data[1::3], data[2::3], strict=True)
    return sum(1 for r, g, b in pixels if r > 180 and g < 90 and b < 90) / (len(data) // 3)


# -- registration ----------------------------------------------------------------------------


def test_registers_next_to_the_image_and_pdf_converters() -> None:
    registry = Registry()
    image_module.register(registry)
    register(registry)
    pdf_module.register(registry)
    for kind in RASTER_KINDS:
        assert registry.find(kind, F.SVG).name == "vector"
    assert set(registry.targets_for(Kind.SVG)) == set(SVG_TARGETS)
    assert registry.find(Kind.SVG, F.PDF).name == "vector"
    assert registry.find(Kind.PDF, F.SVG).name == "pdf"


def test_refuses_pairs_it_does_not_handle(tmp_path: Path, workdir: Path) -> None:
    src = write_image(tmp_path, Kind.PNG, quadrants(40, 40))
    with pytest.raises(UnsupportedConversionError):
        run(src, F.PNG, workdir)


# -- raster -> SVG ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", RASTER_KINDS)
def test_traces_every_raster_kind(kind: Kind, tmp_path: Path, workdir: Path) -> None:
    src = write_image(tmp_path, kind, quadrants(96, 64))
    result = run(src, F.SVG, workdir)
    out = Path(result.path)
    assert (result.format, result.mime_type) == ("svg", "image/svg+xml")
    assert (result.width, result.height) == (96, 64)
    root = svg_root(out)
    assert (root.get("width"), root.get("height")) == ("96", "64")
    assert any("flat graphic" in note for note in result.notes)
    drawn = render_svg(out)
    assert drawn.size == (96, 64)
    assert_colours_close(quadrant_means(on_white(drawn)), QUADRANTS, tolerance=30)


def test_photo_is_posterised_at_a_pixel_budget_and_shown_at_full_size(
    tmp_path: Path, workdir: Path
) -> None:
    # compression 30: a 0.725 MP budget, so a 1200x900 photo is traced smaller.
    src = write_image(tmp_path, Kind.JPEG, noisy(1200, 900))
    started = time.monotonic()
    result = run(src, F.SVG, workdir, compression=30)
    assert time.monotonic() - started < 10
    root = svg_root(Path(result.path))
    assert (root.get("width"), root.get("height")) == ("1200", "900")
    _, _, traced_w, traced_h = (int(v) for v in (root.get("viewBox") or "").split())
    assert traced_w * traced_h <= 725_000 and traced_w < 1200
    assert traced_w / traced_h == pytest.approx(1200 / 900, rel=0.01)
    assert any(f"Traced at {traced_w}x{traced_h} with 8 colours" in n for n in result.notes)
    drawn = render_svg(Path(result.path), scale=0.25)
    assert drawn.size == (300, 225)
    # The quadrants survive the posterising (noise moved them off their pure colours).
    means = quadrant_means(on_white(drawn))
    assert means[0][0] > means[0][2] + 60  # red
    assert means[1][1] > means[1][0] + 60  # green
    assert means[2][2] > means[2][0] + 60  # blue


def test_more_compression_detail_means_a_larger_svg(tmp_path: Path, workdir: Path) -> None:
    src = write_image(tmp_path, Kind.PNG, noisy(400, 300))
    sizes = []
    for level, compression in enumerate((10, 100)):
        where = workdir / str(level)
        where.mkdir()
        sizes.append(Path(run(src, F.SVG, where, compression=compression).path).stat().st_size)
    assert sizes[0] < sizes[1] / 2


def test_mono_is_black_shapes_on_transparency(tmp_path: Path, workdir: Path) -> None:
    drawing = Image.new("RGBA", (200, 120), (0, 0, 0, 0))
    pen = ImageDraw.Draw(drawing)
    pen.rectangle((0, 0, 199, 119), fill=(250, 250, 240, 255))
    pen.ellipse((20, 20, 100, 100), fill=(20, 20, 90, 255))  # dark blue: becomes black
    pen.rectangle((130, 30, 180, 90), fill=(240, 200, 60, 255))  # light yellow: dropped
    src = write_image(tmp_path, Kind.PNG, drawing)
    result = run(src, F.SVG, workdir, mono=True)
    out = Path(result.path)
    fills = {p.get("fill") for p in svg_root(out).iter(f"{SVG_NS}path")}
    assert fills == {"#000000"}
    assert any("black and white" in note for note in result.notes)
    drawn = render_svg(out)
    assert pixel(drawn, 60, 60) == (0, 0, 0, 255)
    assert pixel(drawn, 155, 60)[3] == 0  # the light rectangle is not drawn
    assert pixel(drawn, 5, 5)[3] == 0  # no background


def test_otsu_splits_two_populations_between_them() -> None:
    histogram = [0] * 256
    histogram[40], histogram[200] = 1000, 3000
    assert 40 <= otsu_threshold(histogram) < 200
    assert otsu_threshold([0] * 255 + [10]) == 127  # one grey: the middle


def test_resize_preset_applies_before_tracing(tmp_path: Path, workdir: Path) -> None:
    src = write_image(tmp_path, Kind.PNG, quadrants(2400, 1200))
    result = run(src, F.SVG, workdir, resize=ResizePreset.WEBSITE)
    assert (result.width, result.height) == (1920, 960)
    drawn = render_svg(Path(result.path), scale=0.1)
    assert drawn.size == (192, 96)
    assert_colours_close(quadrant_means(on_white(drawn)), QUADRANTS, tolerance=30)


def test_animation_traces_its_first_frame(tmp_path: Path, workdir: Path) -> None:
    src = write_animation(tmp_path, Kind.GIF)
    result = run(src, F.SVG, workdir)
    assert any("first frame" in note for note in result.notes)
    centre = pixel(on_white(render_svg(Path(result.path))), 40, 20)
    assert_colours_close([centre], [RED], tolerance=10)


def test_trace_over_its_time_limit_is_stopped(tmp_path: Path, workdir: Path) -> None:
    # compression 100 traces 3 MP in 49 colours: several seconds, over a 1 s limit.
    src = write_image(tmp_path, Kind.PNG, noisy(2000, 1500))
    started = time.monotonic()
    with pytest.raises(ConversionTimeoutError) as caught:
        run(src, F.SVG, workdir, compression=100, limits=FakeLimits(trace_timeout=1))
    assert time.monotonic() - started < 6
    assert "mono" in caught.value.message
    assert not (workdir / "output.svg").exists()


# -- SVG -> raster ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", RASTER_FORMATS)
def test_svg_renders_to_every_raster_format(
    target: OutputFormat, tmp_path: Path, workdir: Path
) -> None:
    src = quadrant_svg(tmp_path)
    result = run(src, target, workdir)
    with Image.open(result.path) as decoded:
        assert decoded.size == (200, 100)
        assert_colours_close(quadrant_means(decoded), QUADRANTS, tolerance=12)
    assert (result.width, result.height) == (200, 100)


def test_svg_is_drawn_at_the_preset_scale_not_enlarged_afterwards(
    tmp_path: Path, workdir: Path
) -> None:
    # A 20x20 drawing with a hard edge at x=10; ecommerce fits it into 2000x2000.
    src = write_svg(tmp_path, '<rect width="10" height="20" fill="black"/>', width=20, height=20)
    result = run(src, F.PNG, workdir, resize=ResizePreset.ECOMMERCE)
    with Image.open(result.path) as decoded:
        assert decoded.size == (2000, 2000)
        row = decoded.convert("L").crop((990, 1000, 1010, 1001)).tobytes()
    # Drawn at 100x: the edge is sharp. An enlarged 20 px bitmap would ramp over ~100 px.
    assert sum(1 for value in row if 10 < value < 245) <= 2


def test_svg_over_the_pixel_limit_is_drawn_smaller(tmp_path: Path, workdir: Path) -> None:
    src = quadrant_svg(tmp_path, width=4000, height=2000)
    result = run(src, F.PNG, workdir, limits=FakeLimits(max_pixels=500_000))
    with Image.open(result.path) as decoded:
        assert decoded.width * decoded.height <= 500_000
        assert decoded.width == 2 * decoded.height
        assert_colours_close(quadrant_means(decoded), QUADRANTS, tolerance=12)
    assert any("limit" in note for note in result.notes)


def test_xxe_entity_is_refused_without_reading_the_file(tmp_path: Path, workdir: Path) -> None:
    src = tmp_path / "xxe.svg"
    src.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="100">'
        "<text x='0' y='50'>&x;</text></svg>"
    )
    with pytest.raises(CorruptFileError) as caught:
        run(src, F.PNG, workdir)
    assert "root:" not in caught.value.message
    assert "entities" in caught.value.message
    assert not (workdir / "output.png").exists()


def test_entity_expansion_is_refused(tmp_path: Path, workdir: Path) -> None:
    src = tmp_path / "laughs.svg"
    src.write_text(
        '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "ha">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&b;</text></svg>'
    )
    with pytest.raises(CorruptFileError):
        run(src, F.PNG, workdir)


def test_plain_doctype_without_declarations_is_accepted(tmp_path: Path, workdir: Path) -> None:
    src = tmp_path / "doctype.svg"
    src.write_text(
        '<?xml version="1.0" standalone="no"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n' + quadrant_svg(tmp_path).read_text()
    )
    with Image.open(run(src, F.PNG, workdir).path) as decoded:
        assert_colours_close(quadrant_means(decoded), QUADRANTS, tolerance=12)


def test_local_files_are_never_drawn(tmp_path: Path, workdir: Path) -> None:
    picture = red_png(tmp_path)
    uri = picture.as_uri()
    src = write_svg(
        tmp_path,
        '<rect width="400" height="100" fill="white"/>'
        f'<image href="{uri}" x="0" y="0" width="100" height="100"/>'
        f'<image xlink:href="{uri}" x="100" y="0" width="100" height="100"/>'
        f'<image href="{picture.name}" x="200" y="0" width="100" height="100"/>'
        f'<rect x="300" width="100" height="100" style="fill:url({uri}#x) red"/>'
        f"<style>@import url({uri});</style>",
        width=400,
    )
    result = run(src, F.PNG, workdir)
    with Image.open(result.path) as decoded:
        assert decoded.size == (400, 100)
        assert red_share(decoded) < 0.26  # only the last rect's own fallback colour is red
        assert red_share(decoded.crop((0, 0, 300, 100))) == 0
    assert any("outside the SVG" in note for note in result.notes)


def test_embedded_data_uri_images_are_drawn(tmp_path: Path, workdir: Path) -> None:
    import base64

    encoded = base64.b64encode(red_png(tmp_path).read_bytes()).decode()
    src = write_svg(
        tmp_path,
        f'<image href="data:image/png;base64,{encoded}" width="200" height="100"'
        ' preserveAspectRatio="none"/>',
    )
    result = run(src, F.PNG, workdir)
    with Image.open(result.path) as decoded:
        assert red_share(decoded) > 0.95
    assert not any("outside the SVG" in note for note in result.notes)


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that serves a red PNG and records every request."""
    body = red_png(tmp_path).read_bytes()
    hits: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with loopback_origin(Recorder) as base:
        yield base, hits


def test_network_references_are_never_fetched(
    web_server: tuple[str, list[str]], tmp_path: Path, workdir: Path
) -> None:
    base, hits = web_server
    src = write_svg(
        tmp_path,
        f'<image href="{base}/image.png" width="200" height="100"/>'
        f'<rect width="200" height="100" style="fill:url({base}/paint.svg#p) white"/>'
        f"<style>@import url({base}/style.css);</style>",
    )
    result = run(src, F.PNG, workdir)
    with Image.open(result.path) as decoded:
        assert red_share(decoded) == 0
    assert hits == []


def test_malformed_svg_is_corrupt(tmp_path: Path, workdir: Path) -> None:
    src = tmp_path / "broken.svg"
    src.write_text('<svg xmlns="http://www.w3.org/2000/svg"><rect></svg>')
    with pytest.raises(CorruptFileError):
        run(src, F.PNG, workdir)


# -- SVG -> PDF, SVG -> SVG ------------------------------------------------------------------


def test_svg_to_pdf_is_one_page_of_the_drawing(tmp_path: Path, workdir: Path) -> None:
    src = quadrant_svg(tmp_path)
    result = run(src, F.PDF, workdir)
    assert result.mime_type == "application/pdf"
    document = pdfium.PdfDocument(result.path)
    try:
        assert len(document) == 1
        page = document[0]
        # SVG pixels are 1/96 inch: 200x100 px is 150x75 points.
        assert page.get_size() == pytest.approx((150, 75), abs=0.5)
        drawn = page.render(scale=96 / 72).to_pil()
    finally:
        document.close()
    assert drawn.size == (200, 100)
    assert_colours_close(quadrant_means(drawn), QUADRANTS, tolerance=12)
    assert any("picture of the SVG" in note for note in result.notes)


def test_compress_minifies_svg(tmp_path: Path, workdir: Path) -> None:
    src = tmp_path / "verbose.svg"
    src.write_text(
        '<?xml version="1.0"?>\n<!-- made by hand -->\n'
        '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100">\n'
        "  <metadata>\n    <author>Someone</author>\n  </metadata>\n"
        + "".join(
            f'  <rect x="{x}" y="{y}" width="100" height="50" fill="rgb{c}">\n  </rect>\n'
            for (x, y), c in zip(((0, 0), (100, 0), (0, 50), (100, 50)), QUADRANTS, strict=True)
        )
        + '  <text x="5" y="95"><tspan>Hello</tspan> <tspan>world</tspan></text>\n</svg>\n'
    )
    kept = run(src, None, workdir, job_type=JobType.COMPRESS)
    data = Path(kept.path).read_bytes()
    assert len(data) < src.stat().st_size - 100  # the comment and the indentation
    assert b"<!--" not in data and b"\n" not in data
    assert b"<author>Someone</author>" in data
    assert b"<tspan>Hello</tspan> <tspan>world</tspan>" in data
    assert (kept.width, kept.height) == (200, 100)
    assert_colours_close(quadrant_means(on_white(render_svg(Path(kept.path)))), QUADRANTS, 12)

    stripped = run(src, None, workdir, job_type=JobType.COMPRESS, strip_metadata=True)
    assert b"metadata" not in Path(stripped.path).read_bytes()


def test_safe_svg_keeps_prefixes_and_internal_references() -> None:
    document = (
        b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
        b'<defs><linearGradient id="g"/></defs><use xlink:href="#g"/>'
        b'<rect fill="url(#g)"/><use href="other.svg#g"/></svg>'
    )
    kept = safe_svg(document, external=False)
    assert b'<use xlink:href="#g"/>' in kept.data
    assert b'fill="url(#g)"' in kept.data
    assert b"other.svg" not in kept.data
    assert kept.removed_references == 1
    assert safe_svg(document, external=True).data == document
    with pytest.raises(CorruptFileError):
        safe_svg(b"<html></html>", external=True)


def test_traced_svg_of_a_colourful_green_blue_image(tmp_path: Path, workdir: Path) -> None:
    # Colours of the flat path survive exactly enough to tell blue from green.
    src = write_image(tmp_path, Kind.PNG, quadrants(80, 80, (GREEN, BLUE, BLUE, GREEN)))
    drawn = on_white(render_svg(Path(run(src, F.SVG, workdir).path)))
    assert_colours_close(quadrant_means(drawn), (GREEN, BLUE, BLUE, GREEN), tolerance=30)
