"""The audio and video tools: poster-frame, extract-audio, trim, gif and storyboard.

Each probes its source first (ffprobe), so the length and pixel limits are checked before
anything is decoded (CONVERTLY_MAX_MEDIA_SECONDS: MEDIA_TOO_LONG), then reads only the part
it needs: every run seeks to the clip's start and stops reading at its end (transforms/
media.py builds the window and the encoder arguments), so a header that understates the
length cannot make a tool read more than it asked for. ffmpeg runs through the media
converter's Task (timeouts scaled to the work, progress, the length check).

Stills come out of ffmpeg as PNG: a poster frame then goes through the thumbnail's image
pipeline (tools/image.py), a storyboard's tiles are joined and encoded by libvips.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyvips

from convertly.converters.base import Limits, ProgressFn
from convertly.converters.image.save import save
from convertly.converters.media.ffmpeg import (
    SOURCE_GUARD,
    filter_graph,
    input_url,
    output_args,
    probe,
)
from convertly.converters.media.source import MediaSource, extract_frame, open_source
from convertly.converters.media.video import GIF_PALETTE_USE
from convertly.converters.pixels import check_pixels
from convertly.converters.tools.base import Tool, ToolOutput
from convertly.converters.tools.image import render
from convertly.errors import ConversionError, InvalidFieldError, UnsupportedConversionError
from convertly.models import OutputFormat, SourceInfo, extension_for
from convertly.sniff import Kind
from convertly.transforms import media as av
from convertly.transforms import table
from convertly.transforms.image import quality_for
from convertly.transforms.table import CLIP, ENCODING, FORMAT, QUALITY, Param, ParamKind
from convertly.transforms.values import Colour, Length

F = OutputFormat
VIDEO = frozenset({Kind.MP4, Kind.MOV, Kind.WEBM})
AUDIO = frozenset({Kind.MP3, Kind.WAV, Kind.OGG, Kind.FLAC, Kind.M4A})
AUDIO_FORMATS = ("mp3", "m4a", "wav", "ogg", "flac")
VIDEO_FORMATS = ("mp4", "webm", "mov")
VIDEO_ONLY = ("codec", "videoBitrate", "fps", "width", "height")  # trim options for video
GIF_MAX_SECONDS = 60.0  # of GIF: past this a video format is the better answer
GIF_DEFAULT_SECONDS = 5.0
STORYBOARD_BATCH = 8  # frames one ffmpeg run seeks to (each input holds a decoder)

# Tool-specific parameters (the transform rows are in transforms/table.py).
TIMESTAMP = Param("timestamp", ParamKind.SECONDS, "Where the frame is taken (clamped to the "
                  "last frame).", aliases=("time", "t", "at"), low=0, default=1.0)  # fmt: skip
AUDIO_FORMAT = Param("format", ParamKind.CHOICE, "The audio format.", choices=AUDIO_FORMATS,
                     default="mp3")  # fmt: skip
CLIP_FORMAT = Param("format", ParamKind.CHOICE, "The output format; the source's own when "
                    "absent (audio sources take only audio formats).",
                    choices=VIDEO_FORMATS + AUDIO_FORMATS)  # fmt: skip
GIF_WIDTH = Param("width", ParamKind.INTEGER, "Width in pixels (never larger than the source).",
                  aliases=("w",), low=16, high=1280, default=480)  # fmt: skip
GIF_FPS = Param("fps", ParamKind.NUMBER, "Frames per second.", aliases=("frameRate",), low=1,
                high=30, default=12)  # fmt: skip
MAX_FRAMES = 100
FRAMES = Param("frames", ParamKind.INTEGER, "How many frames, spread evenly over the clip.",
               aliases=("count", "spriteFrames"), low=1, high=MAX_FRAMES, default=12)  # fmt: skip
INTERVAL = Param("interval", ParamKind.SECONDS, "A frame every this many seconds from the "
                 f"start, instead of frames (at most {MAX_FRAMES}).",
                 aliases=("spriteInterval",), low=0.1)  # fmt: skip
COLUMNS = Param("columns", ParamKind.INTEGER, "Tiles per row.", aliases=("cols", "spriteCols"),
                low=1, high=20, default=4)  # fmt: skip
TILE_WIDTH = Param("width", ParamKind.INTEGER, "Width of one tile in pixels.",
                   aliases=("w", "tileWidth", "spriteW"), low=16, high=1280,
                   default=160)  # fmt: skip


# -- poster-frame ----------------------------------------------------------------------------


def poster_frame(src: Path, source: SourceInfo, options: Mapping[str, Any], workdir: Path,
                 limits: Limits, progress: ProgressFn) -> ToolOutput:  # fmt: skip
    """The frame at `timestamp` (clamped to the last frame), then the thumbnail's image
    pipeline (width/height, fit, position, background, format: jpg unless asked)."""
    media = open_source(src, source, limits)
    png, at = extract_frame(media, float(options.get("timestamp") or 0.0), workdir, limits)
    progress(0.5)
    done = render(png, Kind.PNG, {**options, "format": options.get("format") or "jpg"},
                  workdir, limits, "poster")  # fmt: skip
    png.unlink()
    return ToolOutput(done.files, {**done.facts, "timestamp": round(at, 3)})


# -- extract-audio ---------------------------------------------------------------------------


def extract_audio(src: Path, source: SourceInfo, options: Mapping[str, Any], workdir: Path,
                  limits: Limits, progress: ProgressFn) -> ToolOutput:  # fmt: skip
    """The audio track (of `start`..`end` when given) as mp3, m4a, wav, ogg or flac."""
    media = open_source(src, source, limits)
    audio = media.info.audio
    if audio is None:
        raise UnsupportedConversionError("This file has no audio track to extract.")
    fmt = str(options.get("format") or "mp3")
    window = _window(media, options)
    out = workdir / f"audio.{fmt}"
    task = media.task(F(fmt), out, window.length, progress, limits)
    sound = av.audio_args(fmt, audio.channels, options.get("quality"),
                          options.get("audioBitrate"))  # fmt: skip
    task.run([*window.input_args(), "-i", input_url(src), "-map", f"0:{audio.index}", *sound,
              *output_args(fmt, out, strip=False)], 0.2)  # fmt: skip
    return ToolOutput([out], {"format": fmt, "start": window.start, "duration": _seconds(out)})


def _seconds(out: Path) -> float | None:
    """How long the file written lasts, as its container says."""
    seconds = probe(out).duration
    return None if seconds is None else round(seconds, 3)


def _window(media: MediaSource, options: Mapping[str, Any], max_length: float | None = None
            ) -> av.Window:  # fmt: skip
    return av.clip_window(media.duration, float(options.get("start") or 0.0),
                          options.get("end"), options.get("duration"),
                          max_length=max_length)  # fmt: skip


# -- trim ------------------------------------------------------------------------------------


def trim(src: Path, source: SourceInfo, options: Mapping[str, Any], workdir: Path,
         limits: Limits, progress: ProgressFn) -> ToolOutput:  # fmt: skip
    """`start`..`end` (or `start` + `duration`), re-encoded so that the cut is frame-exact,
    in the source's format or `format`, with the codec, quality, bitrates, fps and frame
    size (width/height/fit, contain padding in background) asked for."""
    media = open_source(src, source, limits)
    fmt = str(options.get("format") or media.kind.own_format)
    video = media.info.video if fmt in VIDEO_FORMATS else None
    audio = media.info.audio
    if fmt in VIDEO_FORMATS and video is None:
        raise InvalidFieldError("format", f"{fmt} needs a video track; this file has none "
                                f"(use one of {', '.join(AUDIO_FORMATS)}).")  # fmt: skip
    if fmt in AUDIO_FORMATS and audio is None:
        raise InvalidFieldError("format", f"{fmt} needs an audio track; this file has none.")
    window = _window(media, options)
    out = workdir / f"trimmed.{fmt}"
    task = media.task(F(fmt), out, window.length, progress, limits)
    quality = options.get("quality")
    args = [*window.input_args(), "-i", input_url(src)]
    facts: dict[str, Any] = {"format": fmt, "start": window.start, "end": round(window.end, 3)}
    work = 0.2  # audio only
    if video is not None:
        codec = av.video_codec(fmt, options.get("codec"))
        size = video.display_size
        frame = av.fit_frame(size, _pixels(options.get("width"), size[0]),
                             _pixels(options.get("height"), size[1]), options.get("fit") or "cover",
                             background=_ffmpeg_colour(options.get("background")),
                             rescale=video.sample_aspect != 1)  # fmt: skip
        graph = filter_graph(video, [*av.fps_filter(options.get("fps"), video.fps),
                                     *frame.filters], flatten=video.has_alpha)  # fmt: skip
        args += ["-filter_complex", graph, "-map", "[v]",
                 *av.video_args(codec, quality, options.get("videoBitrate"))]
        facts.update(codec=codec.name, width=frame.width, height=frame.height)
        work = codec.work
    elif video_only := [k for k in VIDEO_ONLY if options.get(k) is not None]:
        raise InvalidFieldError(video_only[0], f"{fmt} holds no video; "
                                f"{', '.join(VIDEO_ONLY)} apply to video formats.")  # fmt: skip
    if audio is not None:
        args += ["-map", f"0:{audio.index}",
                 *av.audio_args(fmt, audio.channels, quality, options.get("audioBitrate"))]
    task.run([*args, *output_args(fmt, out, strip=False)], work)
    facts["duration"] = _seconds(out)
    return ToolOutput([out], facts)


def _pixels(value: Length | None, source: int) -> int | None:
    return None if value is None else min(value.pixels(source), av.MAX_FRAME_SIDE)


def _ffmpeg_colour(colour: Colour | None) -> str:
    """An ffmpeg colour for contain padding (video holds no alpha: black when transparent)."""
    if colour is None or colour.alpha == 0:
        return "black"
    return f"0x{colour.red:02x}{colour.green:02x}{colour.blue:02x}"


# -- gif -------------------------------------------------------------------------------------


def gif(src: Path, source: SourceInfo, options: Mapping[str, Any], workdir: Path,
        limits: Limits, progress: ProgressFn) -> ToolOutput:  # fmt: skip
    """An animated GIF of `start`..`end` (the first 5 s when no length is given), `width`
    pixels wide at `fps`, with a palette made for the clip (two passes)."""
    media = open_source(src, source, limits)
    video = media.video("A GIF")
    window = _window(media, options, GIF_DEFAULT_SECONDS)
    if window.length > GIF_MAX_SECONDS + 0.001:
        raise InvalidFieldError("duration", f"a GIF lasts at most {GIF_MAX_SECONDS:g} s; trim "
                                "to a video format for longer clips.")  # fmt: skip
    fps = float(options.get("fps") or 12)
    frame = av.fit_frame(video.display_size, int(options.get("width") or 480), None, even=False)
    rate = av.fps_filter(fps, video.fps)
    fps = fps if rate else float(video.fps or fps)  # never more frames than the source has
    filters = [*rate, *frame.filters]
    out = workdir / "clip.gif"
    palette = workdir / "palette.png"
    task = media.task(F.GIF, out, window.length, progress, limits)
    source_args = [*window.input_args(), "-i", input_url(src)]
    first = filter_graph(video, filters, flatten=video.has_alpha, finish=["palettegen"])
    task.run([*source_args, "-filter_complex", first, "-map", "[v]", "-frames:v", "1",
              "-f", "image2", str(palette)], 1.0, (0.0, 0.5))  # fmt: skip
    graph = filter_graph(video, filters, flatten=video.has_alpha, out="x")
    graph += f";[x][1:v]{GIF_PALETTE_USE}[v]"
    task.run([*source_args, "-i", str(palette), "-filter_complex", graph, "-map", "[v]",
              *output_args("gif", out, strip=False)], 1.0, (0.5, 1.0))  # fmt: skip
    palette.unlink()
    try:
        frames = int(pyvips.Image.new_from_file(str(out)).get("n-pages"))
    except pyvips.Error as exc:
        raise ConversionError("The GIF could not be written.") from exc
    return ToolOutput([out], {"width": frame.width, "height": frame.height, "fps": round(fps, 3),
                              "frames": frames, "start": window.start,
                              "duration": round(window.length, 3)})  # fmt: skip


# -- storyboard ------------------------------------------------------------------------------


def storyboard(src: Path, source: SourceInfo, options: Mapping[str, Any], workdir: Path,
               limits: Limits, progress: ProgressFn) -> ToolOutput:  # fmt: skip
    """`frames` frames spread evenly over the clip (each from the middle of its share), or
    one every `interval` seconds from its start, as one grid image `columns` tiles wide; the
    facts give each tile's time and place."""
    media = open_source(src, source, limits)
    video = media.video("A storyboard")
    window = _window(media, options)
    if (interval := options.get("interval")) is not None:
        count = max(1, min(math.ceil(window.length / interval - 1e-6), MAX_FRAMES))
        times = [window.start + interval * i for i in range(count)]
    else:
        count = int(options.get("frames") or 12)
        step = window.length / count
        times = [window.start + step * (i + 0.5) for i in range(count)]
    columns = min(int(options.get("columns") or 4), count)
    rows = -(-count // columns)
    tile = av.fit_frame(video.display_size, int(options.get("width") or 160), None, even=False,
                        enlarge=True)  # fmt: skip
    # The grid is held whole while it is joined: its pixels count against the limit.
    check_pixels(limits, [(columns * tile.width, rows * tile.height)], subject="storyboard")
    task = media.task(F.PNG, workdir / "tile.png", 0.0, progress, limits)
    pngs = [workdir / f"tile{i:03d}.png" for i in range(count)]
    for first in range(0, count, STORYBOARD_BATCH):
        batch = range(first, min(first + STORYBOARD_BATCH, count))
        args: list[str] = []
        graphs: list[str] = []
        outputs: list[str] = []
        for n, i in enumerate(batch):
            # run_ffmpeg guards the first input; each further one gets the same guard.
            guard = SOURCE_GUARD if n else ()
            args += [*guard, "-ss", f"{times[i]:.3f}", "-i", input_url(src)]
            graph = filter_graph(video, tile.filters, flatten=False, out=f"v{n}")
            graphs.append(f"[{n}:{video.index}]" + graph.removeprefix(f"[0:{video.index}]"))
            outputs += ["-map", f"[v{n}]", "-frames:v", "1", "-pix_fmt", "rgb24",
                        "-f", "image2", str(pngs[i])]  # fmt: skip
        task.run([*args, "-filter_complex", ";".join(graphs), *outputs], 0.0,
                 report=lambda _f: None)
        progress(0.9 * batch.stop / count)
    tiles = [_tile(png, tile.width, tile.height) for png in pngs]
    fmt = str(options.get("format") or "jpg")
    out = workdir / f"storyboard.{extension_for(fmt)}"
    try:
        grid = pyvips.Image.arrayjoin(tiles, across=columns, background=[0, 0, 0])
        save(grid, F(fmt), out, quality=quality_for(options.get("quality"), fmt), strip=True)
    except pyvips.Error as exc:
        raise ConversionError("The storyboard could not be assembled.") from exc
    for png in pngs:
        png.unlink(missing_ok=True)
    return ToolOutput([out], {
        "columns": columns, "rows": rows, "tileWidth": tile.width, "tileHeight": tile.height,
        "frames": [{"time": round(t, 3), "x": (i % columns) * tile.width,
                    "y": (i // columns) * tile.height} for i, t in enumerate(times)],
    })  # fmt: skip


def _tile(png: Path, width: int, height: int) -> pyvips.Image:
    """A tile's frame, or a black tile where the seek found none (past the last keyframe)."""
    if png.exists() and png.stat().st_size > 0:
        image = pyvips.Image.new_from_file(str(png), access="sequential")
        return image.copy_memory()
    return pyvips.Image.black(width, height, bands=3)


# -- the declarations ------------------------------------------------------------------------

POSTER_FRAME = Tool(
    "poster-frame", "One video frame as an image, at a timestamp, sized by width/height/fit.",
    VIDEO, (TIMESTAMP, *table.GEOMETRY, *table.OUTPUT),
    poster_frame,
)  # fmt: skip
EXTRACT_AUDIO = Tool(
    "extract-audio", "The audio track as mp3, m4a, wav, ogg or flac, whole or a part of it.",
    VIDEO | AUDIO, (AUDIO_FORMAT, *CLIP, table.AUDIO_BITRATE, QUALITY),
    extract_audio,
)  # fmt: skip
TRIM = Tool(
    "trim", "A part of a video or audio file (start..end or start + duration), cut exactly; "
    "video re-encoded with the codec, quality, bitrates, fps and size asked for.",
    VIDEO | AUDIO, (*CLIP, CLIP_FORMAT, *ENCODING, table.WIDTH, table.HEIGHT, table.FIT,
                    table.BACKGROUND),
    trim,
)  # fmt: skip
GIF = Tool(
    "gif", "An animated GIF of a part of a video (the first 5 s unless told), at most 60 s.",
    VIDEO, (*CLIP, GIF_WIDTH, GIF_FPS), gif,
)  # fmt: skip
STORYBOARD = Tool(
    "storyboard", "Frames spread over a video, as one grid image with each tile's time.",
    VIDEO, (FRAMES, INTERVAL, COLUMNS, TILE_WIDTH, *CLIP, FORMAT, QUALITY),
    storyboard,
)  # fmt: skip
TOOLS = (POSTER_FRAME, EXTRACT_AUDIO, TRIM, GIF, STORYBOARD)
