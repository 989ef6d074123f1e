"""The watermark tool: text or a logo laid over an image or every frame of a video.

The mark is drawn once with libvips, whatever the source: a logo (an uploaded part or a
stored file, read like any source image) or text (Pango, in `color`), as wide as `scale` of
the frame's width (never taller than the frame), its alpha multiplied by `opacity`. It is
placed `margin` from the edges at `position` (centre, an edge or a corner), or repeated
across the frame (`tile`). An image is composited by libvips and written in its own format
(or `format`); a video is composited by ffmpeg's overlay filter, frame by frame, and
re-encoded in its own container with the audio copied as it is.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyvips

from convertly.converters.base import Limits, ProgressFn
from convertly.converters.image import SOURCES as RASTER_SOURCES
from convertly.converters.image.shape import frame_height
from convertly.converters.media.ffmpeg import filter_graph, input_url, output_args
from convertly.converters.media.source import open_source
from convertly.converters.media.task import Task
from convertly.converters.tools.base import Tool, ToolOutput
from convertly.converters.tools.media import VIDEO, VIDEO_FORMATS
from convertly.converters.tools.raster import (
    ANIMATED_TARGETS,
    output_format,
    read_image,
    write_image,
)
from convertly.errors import ConversionError, InvalidFieldError, UnsupportedConversionError
from convertly.models import FileSpec, OutputFormat, SourceInfo
from convertly.sniff import Kind, sniff_file
from convertly.transforms import media as av
from convertly.transforms.table import (
    FORMAT,
    IMAGE_FORMATS,
    POSITION,
    QUALITY,
    Param,
    ParamKind,
)
from convertly.transforms.values import Colour, Length

PLACES = ("centre", "top", "bottom", "left", "right", "top-left", "top-right", "bottom-left",
          "bottom-right", "tile")
FONT = "sans bold"
TEXT_DPI = 300  # the first drawing, measured to find the dpi that gives the width asked for
GLYPH_WIDTH = 0.75  # of the font size: wider than most glyphs, to bound a drawing beforehand
DEFAULT_MARGIN = 0.03  # of the frame's shorter side
MAX_DATA_URL = 16 * 1024 * 1024  # characters of a logo sent as a data: URL (12 MiB of image)
TILE_GAP = 1.0  # space between repeated marks, in mark widths (across) and heights (down)

TEXT = Param("text", ParamKind.TEXT, "The words to lay over the source (send text or logo).",
             aliases=("watermarkText",), low=1, high=200)
LOGO = Param("logo", ParamKind.FILE, "An image to lay over the source: an uploaded part or "
             "a stored file's id (send text or logo).",
             aliases=("image", "watermarkImage", "watermarkFileId"))
LOGO_DATA_URL = Param("watermarkLogoDataUrl", ParamKind.TEXT, "The logo as a data: URL "
                      "(data:image/png;base64,...), in place of logo.",
                      aliases=("logoDataUrl",), low=1, high=MAX_DATA_URL)
PLACE = Param("position", ParamKind.CHOICE, "Where the mark goes: centre, an edge, a corner, "
              "or tile (repeated across the whole frame).", aliases=POSITION.aliases,
              choices=PLACES, synonyms=(*POSITION.synonyms, ("tiled", "tile"),
                                        ("repeat", "tile")), default="bottom-right")
OPACITY = Param("opacity", ParamKind.NUMBER, "0 invisible to 1 opaque.", aliases=("alpha",),
                low=0, high=1, default=0.5)
SCALE = Param("scale", ParamKind.NUMBER, "The mark's width as a share of the frame's width "
              "(0.01-1); it is never taller than the frame.", aliases=("size",), low=0.01,
              high=1, default=0.25)
MARGIN = Param("margin", ParamKind.LENGTH, "Distance from the edges: pixels or a percentage "
               "of the frame's shorter side. Default 3%.", aliases=("padding",), low=0,
               high=10_000)
FONT_SIZE = Param("fontSize", ParamKind.INTEGER, "The text's size in pixels, in place of "
                  "scale (made smaller only if the text would be wider than the frame).",
                  aliases=("font_size", "textSize"), low=4, high=2000)
COLOR = Param("color", ParamKind.COLOUR, "The text's colour (hex, alpha allowed).",
              aliases=("colour", "fontColor"), default="#ffffff")
MARK_FORMAT = Param(FORMAT.name, ParamKind.CHOICE, "The output format: an image's (default "
                    "its own), or a video's container (default its own).",
                    aliases=FORMAT.aliases, choices=(*IMAGE_FORMATS, *VIDEO_FORMATS),
                    synonyms=FORMAT.synonyms)


def watermark(
    src: Path,
    source: SourceInfo,
    options: Mapping[str, Any],
    workdir: Path,
    limits: Limits,
    progress: ProgressFn,
) -> ToolOutput:
    """Lay the text or logo of `options` over `src` (an image, or every frame of a video)."""
    options = {**options, "logo": _logo_file(options, workdir)}
    if (options.get("text") is None) == (options.get("logo") is None):
        raise InvalidFieldError("text", "send either text or logo (an image), not "
                                f"{'both' if options.get('text') else 'neither'}.")
    kind = Kind(source.kind)
    if kind in VIDEO:
        return _video(src, kind, source, options, workdir, limits, progress)
    chosen = options.get("format")
    if chosen in VIDEO_FORMATS:
        raise InvalidFieldError("format", f"an image cannot become {chosen}; use one of "
                                f"{', '.join(IMAGE_FORMATS)}.")
    base = read_image(src, kind, limits, animated=True)
    height = frame_height(base)
    mark = _mark(options, base.width, height, limits)
    progress(0.4)
    marked = _lay(base, mark, options["position"], _margin(options, base.width, height))
    target = output_format(chosen, kind, marked.hasalpha())
    out = write_image(marked, target, workdir, "watermarked", options.get("quality"))
    frames = base.height // height if target in ANIMATED_TARGETS else 1
    return ToolOutput([out], {"width": marked.width, "height": height,
                              "format": target.value, "frames": frames})


def _logo_file(options: Mapping[str, Any], workdir: Path) -> Path | None:
    """The logo's local file: the resolved `logo`, or `watermarkLogoDataUrl` decoded."""
    url: str | None = options.get("watermarkLogoDataUrl")
    if url is None:
        return None if options.get("logo") is None else Path(options["logo"])
    if options.get("logo") is not None:
        raise InvalidFieldError("watermarkLogoDataUrl", "send logo or watermarkLogoDataUrl, "
                                "not both.")
    head, comma, data = url.partition(",")
    if not (head.startswith("data:image/") and head.endswith(";base64") and comma):
        raise InvalidFieldError("watermarkLogoDataUrl", "must be a base64 data: URL of an "
                                "image (data:image/png;base64,...).")
    try:
        decoded = base64.b64decode(data, validate=True)
    except binascii.Error as exc:
        raise InvalidFieldError("watermarkLogoDataUrl", "its data is not valid base64.") from exc
    path = workdir / "logo-data"
    path.write_bytes(decoded)
    return path


def _mark(options: Mapping[str, Any], width: int, height: int, limits: Limits) -> pyvips.Image:
    """The mark as 8-bit RGBA, `scale` of `width` wide (text of a `fontSize`: that size, no
    wider than `width`), at most `height` tall, its alpha multiplied by `opacity`."""
    wide = max(1, round(options["scale"] * width))
    size: int | None = options.get("fontSize")
    try:
        if options.get("logo") is not None:
            mark = _logo(Path(options["logo"]), limits)
        elif size is not None:
            mark = _text(options["text"], options["color"], (width, height), size=size)
            wide = width
        else:
            mark = _text(options["text"], options["color"], (width, height), wide=wide)
        factor = min(wide / mark.width, height / mark.height)
        if size is not None and options.get("logo") is None:
            factor = min(factor, 1.0)  # a size asked for is only ever made smaller to fit
        if abs(factor - 1) > 0.001:
            mark = mark.resize(factor)
        alpha = (mark[3] * options["opacity"]).cast("uchar")
        return mark[:3].bandjoin(alpha).copy(interpretation="srgb").copy_memory()
    except pyvips.Error as exc:
        raise ConversionError("The watermark could not be drawn.") from exc


def _logo(path: Path, limits: Limits) -> pyvips.Image:
    kind = sniff_file(path).kind
    if kind not in {k.value for k in RASTER_SOURCES}:
        raise InvalidFieldError("logo", "must be an image (jpg, png, webp, gif, tiff, avif, "
                                "heif or bmp).")
    image = read_image(path, Kind(kind), limits)
    return image if image.hasalpha() else image.bandjoin(255)


def _text(text: str, colour: Colour, box: tuple[int, int], *, wide: int = 0,
          size: int | None = None) -> pyvips.Image:  # fmt: skip
    """`text` in `colour`, drawn (not scaled) `size` pixels high (a font of `size` points at
    72 dpi), or about `wide` pixels wide; never drawn much larger than `box` (the frame),
    whatever the size or the text asks for."""
    width, height = box
    if size is not None:
        size = min(size, height)
        guess = len(text) * size * GLYPH_WIDTH  # before drawing: a long text at a large size
        if guess > 2 * width:
            size = max(1, int(size * 2 * width / guess))
        mask = pyvips.Image.text(text, font=f"{FONT} {size}", dpi=72)
    else:
        first = pyvips.Image.text(text, font=FONT, dpi=TEXT_DPI)
        dpi = min(TEXT_DPI * wide / max(1, first.width), TEXT_DPI * height / max(1, first.height))
        dpi = max(1, round(dpi))
        mask = pyvips.Image.text(text, font=FONT, dpi=dpi) if dpi != TEXT_DPI else first
    ink = mask.new_from_image(colour.rgb).cast("uchar")
    return ink.bandjoin((mask * (colour.alpha / 255)).cast("uchar"))


def _margin(options: Mapping[str, Any], width: int, height: int) -> int:
    margin: Length | None = options.get("margin")
    shorter = min(width, height)
    return margin.pixels(shorter) if margin is not None else round(DEFAULT_MARGIN * shorter)


def place(position: str, frame: tuple[int, int], mark: tuple[int, int],
          margin: int) -> tuple[int, int]:  # fmt: skip
    """Top-left corner of a `mark`-sized box at `position` in `frame`, `margin` from the
    edges it touches (kept inside the frame)."""
    (width, height), (wide, tall) = frame, mark
    x, y = (width - wide) // 2, (height - tall) // 2
    if "left" in position:
        x = margin
    elif "right" in position:
        x = width - wide - margin
    if "top" in position:
        y = margin
    elif "bottom" in position:
        y = height - tall - margin
    return max(0, min(x, width - wide)), max(0, min(y, height - tall))


def _tiled(mark: pyvips.Image, width: int, height: int) -> pyvips.Image:
    """`mark` repeated across a `width` x `height` transparent canvas."""
    cell_w = mark.width + max(1, round(mark.width * TILE_GAP))
    cell_h = mark.height + max(1, round(mark.height * TILE_GAP))
    cell = mark.embed(0, 0, cell_w, cell_h, extend="background", background=[0, 0, 0, 0])
    across, down = math.ceil(width / cell_w), math.ceil(height / cell_h)
    return cell.replicate(across, down).crop(0, 0, width, height)


def _lay(base: pyvips.Image, mark: pyvips.Image, position: str, margin: int) -> pyvips.Image:
    """`mark` over every frame of `base` (an animation's frames are stacked vertically)."""
    height = frame_height(base)
    try:
        if position == "tile":
            layer = _tiled(mark, base.width, height)
        else:
            x, y = place(position, (base.width, height), (mark.width, mark.height), margin)
            layer = mark.embed(x, y, base.width, height, extend="background",
                               background=[0, 0, 0, 0])
        if height < base.height:
            layer = layer.replicate(1, base.height // height)
        alpha = base.hasalpha()
        marked = base.composite2(layer, "over")
        marked = marked.cast("uchar").copy(interpretation="srgb")
        return marked if alpha else marked[:3]
    except pyvips.Error as exc:
        raise ConversionError("The watermark could not be laid over the image.") from exc


def _video(src: Path, kind: Kind, source: SourceInfo, options: Mapping[str, Any],
           workdir: Path, limits: Limits, progress: ProgressFn) -> ToolOutput:  # fmt: skip
    media = open_source(src, source, limits)
    video = media.info.video
    if video is None:
        raise UnsupportedConversionError("watermark needs a video track; this file has none.")
    fmt = options.get("format") or kind.own_format
    if fmt not in VIDEO_FORMATS:
        raise InvalidFieldError("format", f"a video keeps a video format: one of "
                                f"{', '.join(VIDEO_FORMATS)}.")
    width, height = video.oriented_size  # the frames overlay sees (ffmpeg autorotates)
    mark = _mark(options, width, height, limits)
    drawn = workdir / "mark.png"
    if options["position"] == "tile":
        mark, x, y = _tiled(mark, width, height), 0, 0
    else:
        x, y = place(options["position"], (width, height), (mark.width, mark.height),
                     _margin(options, width, height))
    mark.pngsave(str(drawn), compression=1)
    out = workdir / f"watermarked.{fmt}"
    task = Task(src=src, spec=FileSpec(index=0, filename=src.name, format=OutputFormat(fmt)),
                target=OutputFormat(fmt), info=media.info, duration=media.duration, out=out,
                report=progress, max_seconds=limits.max_media_seconds)  # fmt: skip
    graph = filter_graph(video, [], flatten=video.has_alpha, out="base")
    graph += f";[base][1:v]overlay=x={x}:y={y}:format=auto[v]"
    args = ["-i", input_url(src), "-i", f"file:{drawn}", "-filter_complex", graph,
            "-map", "[v]", *av.video_args(av.video_codec(fmt, None), options.get("quality"))]
    if (audio := media.info.audio) is not None:
        args += ["-map", f"0:{audio.index}", "-c:a", "copy"] if fmt == kind.own_format else [
            "-map", f"0:{audio.index}", *av.audio_args(fmt, audio.channels)]
    task.run([*args, *output_args(fmt, out, strip=False)], 1.5)
    return ToolOutput([out], {"width": width, "height": height, "format": fmt,
                              "duration": round(task.written[-1] or media.duration, 3)})


WATERMARK = Tool(
    name="watermark",
    summary="Lay text or a logo over an image or a video: position, opacity, scale.",
    sources=frozenset({*RASTER_SOURCES, *VIDEO}),
    params=(TEXT, LOGO, LOGO_DATA_URL, PLACE, OPACITY, SCALE, FONT_SIZE, MARGIN, COLOR,
            MARK_FORMAT, QUALITY),
    run=watermark,
)
