"""The image tools on the transform engine (`convertly.transforms.image`):

    thumbnail   a small image of an image or of a video's representative frame (a tenth
                of the way in, past fades from black): size, fit, position, background,
                format, quality
    transform   every image parameter of the table, applied in the engine's order

Both read libvips-decodable sources through the engine's fast path (sized while decoding)
and the rest (HEIF, BMP, what only Pillow reads) decoded whole first. The output keeps the
ICC profile and drops other metadata. Facts: the output's width, height and format.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyvips

from convertly.converters.base import Limits, ProgressFn
from convertly.converters.image.declared import check_declared
from convertly.converters.image.load import Header, load, read_header, vips_source
from convertly.converters.image.save import save
from convertly.converters.media.source import extract_frame, open_source
from convertly.converters.pixels import check_pixels
from convertly.converters.resize import ResizePlan
from convertly.converters.tools.base import Tool, ToolOutput
from convertly.errors import CorruptFileError
from convertly.models import OutputFormat, SourceInfo, extension_for
from convertly.sniff import Kind
from convertly.transforms import image as engine
from convertly.transforms import table
from convertly.transforms.values import Length

IMAGE_SOURCES = frozenset({
    Kind.JPEG, Kind.PNG, Kind.GIF, Kind.WEBP, Kind.TIFF, Kind.BMP, Kind.AVIF, Kind.HEIF,
    Kind.SVG,
})
VIDEO_SOURCES = frozenset({Kind.MP4, Kind.MOV, Kind.WEBM})
THUMBNAIL_BOX = 320  # a thumbnail asked for without width or height fits in this square


def render(src: Path, kind: Kind, options: Mapping[str, Any], workdir: Path, limits: Limits,
           name: str) -> ToolOutput:
    """`options` (parsed against table rows) applied to the image `src`, written as
    `name`.<format> in `workdir`."""
    check_declared(src, kind, limits)
    header = read_header(src, kind)
    width, height = header.oriented(True)
    check_pixels(limits, [(width, height)])
    check_pixels(limits, [engine.output_size(width, height, options)])
    try:
        image, fmt = _transformed(src, kind, header, options)
        out = workdir / f"{name}.{extension_for(fmt)}"
        save(image, OutputFormat(fmt), out,
             quality=engine.quality_for(options.get("quality"), fmt), strip=True)
    except pyvips.Error as exc:
        raise CorruptFileError() from exc
    return ToolOutput(files=[out],
                      facts={"width": image.width, "height": image.height, "format": fmt})


def _transformed(src: Path, kind: Kind, header: Header,
                 options: Mapping[str, Any]) -> tuple[pyvips.Image, str]:
    source_format = kind.own_format
    if header.pillow:
        whole = ResizePlan(header.width, header.height, header.width, header.height,
                           header.width, header.height)
        decoded = load(src, kind, header, whole, auto_orient=True, animated=False)
        fmt = engine.output_format(options, source_format, decoded.hasalpha())
        return engine.apply(decoded, options, alpha=fmt in engine.ALPHA_FORMATS), fmt
    # The source's alpha only matters when neither the request nor the source names a
    # format that can be written: only then is the header read again for it.
    has_alpha = (not options.get("format")
                 and source_format not in engine.LOSSY_FORMATS | engine.ALPHA_FORMATS
                 and pyvips.Image.new_from_source(vips_source(src), "").hasalpha())
    fmt = engine.output_format(options, source_format, has_alpha)
    image = engine.from_file(src, options, alpha=fmt in engine.ALPHA_FORMATS,
                             fail_on="error" if kind is Kind.TIFF else "truncated",
                             oriented=header.oriented(True))
    return image, fmt


def thumbnail(src: Path, source: SourceInfo, options: Mapping[str, Any], workdir: Path,
              limits: Limits, progress: ProgressFn) -> ToolOutput:
    if options.get("width") is None and options.get("height") is None:
        options = {**options, "width": Length(THUMBNAIL_BOX), "height": Length(THUMBNAIL_BOX),
                   "fit": "inside"}
    kind = Kind(source.kind)
    if kind in VIDEO_SOURCES:
        # A frame a tenth of the way in (media/source.py: probed, limits checked first).
        frame, _at = extract_frame(open_source(src, source, limits), None, workdir, limits)
        progress(0.5)
        result = render(frame, Kind.PNG, {"format": "jpg", **_set(options)}, workdir, limits,
                        "thumbnail")
        frame.unlink()
        return result
    return render(src, kind, options, workdir, limits, "thumbnail")


def _set(options: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in options.items() if value is not None}


def transform(src: Path, source: SourceInfo, options: Mapping[str, Any], workdir: Path,
              limits: Limits, progress: ProgressFn) -> ToolOutput:
    return render(src, Kind(source.kind), options, workdir, limits, "transform")


THUMBNAIL = Tool(
    name="thumbnail",
    summary="A small image of an image or of a video's frame: width and/or height (pixels "
    "or percent), fit, position, background, format (a video's: jpg unless asked), "
    f"quality; with neither size, fits in {THUMBNAIL_BOX}x{THUMBNAIL_BOX}.",
    sources=IMAGE_SOURCES | VIDEO_SOURCES,
    params=(*table.GEOMETRY, *table.OUTPUT),
    run=thumbnail,
)
TRANSFORM = Tool(
    name="transform",
    summary="Resize, crop (edges, corners, smart, focal point), rotate, flip, trim, pad, "
    "border, round corners, blur, sharpen, adjust colour, and re-encode an image.",
    sources=IMAGE_SOURCES,
    params=table.IMAGE,
    run=transform,
)
TOOLS = (THUMBNAIL, TRANSFORM)
