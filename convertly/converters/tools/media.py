"""The audio and video tools: poster-frame, extract-audio, trim, gif and storyboard.

Each probes its source first (ffprobe), so the length and pixel limits are checked before
anything is decoded (CONVERTLY_MAX_MEDIA_SECONDS: MEDIA_TOO_LONG), then reads only the part
it needs: every run seeks to the clip's start and stops reading at its end (transforms/
media.py builds the window and the encoder arguments), so a header that understates the
length cannot make a tool read more than it asked for. ffmpeg runs through the media
converter's Task (timeouts scaled to the work, progress, the length check).

Stills (a poster frame, a storyboard's tiles) come out of ffmpeg as PNG and are encoded by
libvips in the format asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyvips

from convertly.converters.base import Limits, ProgressFn
from convertly.converters.media.converter import READ_BYTES_PER_SECOND, check_limits
from convertly.converters.media.encryption import check_not_encrypted
from convertly.converters.media.ffmpeg import (
    SOURCE_GUARD,
    MediaInfo,
    Stream,
    filter_graph,
    input_url,
    measure_duration,
    output_args,
    probe,
)
from convertly.converters.media.task import BASE_TIMEOUT, LENGTH_MARGIN, Task
from convertly.converters.media.video import GIF_PALETTE_USE
from convertly.converters.tools.base import Tool, ToolOutput
from convertly.errors import ConversionError, InvalidFieldError, UnsupportedConversionError
from convertly.models import FileSpec, OutputFormat, SourceInfo
from convertly.sniff import Kind
from convertly.transforms import media as av
from convertly.transforms.table import (
    AUDIO_BITRATE,
    CLIP,
    ENCODING,
    FIT,
    FORMAT,
    HEIGHT,
    QUALITY,
    WIDTH,
    Param,
    ParamKind,
)
from convertly.transforms.values import Length

F = OutputFormat
VIDEO = frozenset({Kind.MP4, Kind.MOV, Kind.WEBM})
AUDIO = frozenset({Kind.MP3, Kind.WAV, Kind.OGG, Kind.FLAC, Kind.M4A})
AUDIO_FORMATS = ("mp3", "m4a", "wav", "ogg", "flac")
VIDEO_FORMATS = ("mp4", "webm", "mov")
STILL_QUALITY = 82  # of a still whose quality is not given (jpg, webp, avif)
GIF_MAX_SECONDS = 60.0  # of GIF: past this a video format is the better answer
GIF_DEFAULT_SECONDS = 5.0
STORYBOARD_BATCH = 8  # frames one ffmpeg run seeks to (each input holds a decoder)
AVIF_EFFORT = 2  # libvips' default (4) takes ~10x longer for a few per cent

# Tool-specific parameters (the transform rows are in transforms/table.py).
TIMESTAMP = Param("timestamp", ParamKind.SECONDS, "Where the frame is taken (clamped to the "
                  "last frame).", aliases=("time", "at"), low=0, default=1.0)  # fmt: skip
AUDIO_FORMAT = Param("format", ParamKind.CHOICE, "The audio format.", choices=AUDIO_FORMATS,
                     default="mp3")  # fmt: skip
CLIP_FORMAT = Param("format", ParamKind.CHOICE, "The output format; the source's own when "
                    "absent (audio sources take only audio formats).",
                    choices=VIDEO_FORMATS + AUDIO_FORMATS)  # fmt: skip
GIF_WIDTH = Param("width", ParamKind.INTEGER, "Width in pixels (never larger than the source).",
                  aliases=("w",), low=16, high=1280, default=480)  # fmt: skip
GIF_FPS = Param("fps", ParamKind.NUMBER, "Frames per second.", aliases=("frameRate",), low=1,
                high=30, default=12)  # fmt: skip
FRAMES = Param("frames", ParamKind.INTEGER, "How many frames, spread evenly over the clip.",
               aliases=("count",), low=1, high=100, default=12)  # fmt: skip
COLUMNS = Param("columns", ParamKind.INTEGER, "Tiles per row.", aliases=("cols",), low=1,
                high=20, default=4)  # fmt: skip
TILE_WIDTH = Param("width", ParamKind.INTEGER, "Width of one tile in pixels.", aliases=("w",),
                   low=16, high=1280, default=160)  # fmt: skip


# -- the source ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    src: Path
    kind: Kind
    info: MediaInfo
    duration: float  # seconds; 0 when unknown (a still)


def open_source(src: Path, source: SourceInfo, limits: Limits) -> Source:
    """Probe `src` and check the limits (MEDIA_TOO_LONG, pixels) before anything decodes."""
    kind = Kind(source.kind)
    check_not_encrypted(src, kind)
    info = probe(src)
    check_limits(info, info.duration or 0.0, limits)
    duration = info.duration
    if duration is None:
        # Streamed WebM (MediaRecorder) announces no duration: read every packet.
        duration = measure_duration(
            src, timeout=BASE_TIMEOUT + source.size / READ_BYTES_PER_SECOND,
            cap=limits.max_media_seconds + LENGTH_MARGIN,
        )  # fmt: skip
        check_limits(info, duration or 0.0, limits)
    return Source(src, kind, info, duration or 0.0)


def _video(source: Source, tool: str) -> Stream:
    if (video := source.info.video) is None:
        raise UnsupportedConversionError(f"{tool} needs a video track; this file has none.")
    return video


def _task(source: Source, target: OutputFormat, out: Path, seconds: float,
          progress: ProgressFn, limits: Limits) -> Task:  # fmt: skip
    return Task(src=source.src, spec=FileSpec(index=0, filename=source.src.name, format=target),
                target=target, info=source.info, duration=seconds, out=out, report=progress,
                max_seconds=limits.max_media_seconds)  # fmt: skip


def _size(video: Stream) -> tuple[int, int]:
    """The frame size ffmpeg decodes to: rotation applied (it autorotates), pixels square."""
    return video.display_size


def _pixels(value: Length | None, source: int) -> int | None:
    return None if value is None else min(value.pixels(source), av.MAX_FRAME_SIDE)


def _still_quality(options: Mapping[str, Any]) -> int:
    quality = options.get("quality")
    return STILL_QUALITY if quality is None else av.quality_point(quality)


def save_still(png: Path, fmt: str, quality: int, out: Path) -> tuple[int, int]:
    """Encode the PNG `png` as `fmt` into `out`; its size."""
    try:
        image = pyvips.Image.new_from_file(str(png), access="sequential")
        match fmt:
            case "jpg":
                if image.hasalpha():
                    image = image.flatten(background=[255, 255, 255])
                image.jpegsave(str(out), Q=quality, optimize_coding=True, keep="none")
            case "png":
                image.pngsave(str(out), keep="none")
            case "webp":
                image.webpsave(str(out), Q=quality, keep="none")
            case "avif":
                image.heifsave(str(out), compression="av1", Q=quality, effort=AVIF_EFFORT,
                               keep="none")  # fmt: skip
            case "gif":
                image.gifsave(str(out), keep="none")
            case "tiff":
                image.tiffsave(str(out), compression="deflate", keep="none")
            case _:
                raise ValueError(fmt)
    except pyvips.Error as exc:
        raise ConversionError(f"The frame could not be encoded as {fmt}.") from exc
    return image.width, image.height


# -- poster-frame ----------------------------------------------------------------------------


def poster_frame(src: Path, source: SourceInfo, options: Mapping[str, Any], workdir: Path,
                 limits: Limits, progress: ProgressFn) -> ToolOutput:  # fmt: skip
    """One frame at `timestamp` (clamped to the last frame), sized by width/height/fit."""
    media = open_source(src, source, limits)
    video = _video(media, "A poster frame")
    last = max(media.duration - 1 / (video.fps or 25), 0.0)
    at = min(float(options.get("timestamp", 1.0)), last)
    size = _size(video)
    frame = av.fit_frame(size, _pixels(options.get("width"), size[0]),
                         _pixels(options.get("height"), size[1]), options.get("fit") or "cover",
                         even=False)  # fmt: skip
    fmt = str(options.get("format") or "jpg")
    png = workdir / "frame.png"
    task = _task(media, F.PNG, png, 0.0, progress, limits)
    graph = filter_graph(video, frame.filters, flatten=False)
    for seek in dict.fromkeys((at, 0.0)):  # a seek past the last keyframe may give nothing
        task.run(["-ss", f"{seek:.3f}", "-i", input_url(src), "-filter_complex", graph,
                  "-map", "[v]", "-frames:v", "1", "-pix_fmt",
                  "rgba" if video.has_alpha else "rgb24", "-f", "image2", str(png)],
                 0.0)  # fmt: skip
        if png.exists() and png.stat().st_size > 0:
            at = seek
            break
    else:
        raise ConversionError("No video frame could be decoded from this file.")
    out = workdir / f"poster.{fmt}"
    if fmt == "png":
        png.rename(out)
        width, height = frame.width, frame.height
    else:
        width, height = save_still(png, fmt, _still_quality(options), out)
        png.unlink()
    return ToolOutput([out], {"timestamp": round(at, 3), "width": width, "height": height})


# -- extract-audio ---------------------------------------------------------------------------


def extract_audio(src: Path, source: SourceInfo, options: Mapping[str, Any], workdir: Path,
                  limits: Limits, progress: ProgressFn) -> ToolOutput:  # fmt: skip
    """The audio track (of `start`..`end` when given) as mp3, m4a, wav, ogg or flac."""
    media = open_source(src, source, limits)
    audio = media.info.audio
    if audio is None:
        raise UnsupportedConversionError("This file has no audio track to extract.")
    fmt = str(options.get("format", "mp3"))
    window = _window(media, options)
    out = workdir / f"audio.{fmt}"
    task = _task(media, F(fmt), out, window.length, progress, limits)
    sound = av.audio_args(fmt, audio.channels, options.get("quality"),
                          options.get("audioBitrate"))  # fmt: skip
    task.run([*window.input_args(), "-i", input_url(src), "-map", f"0:{audio.index}", *sound,
              *output_args(fmt, out, strip=False)], 0.2)  # fmt: skip
    return ToolOutput([out], {"format": fmt, "start": window.start,
                              "duration": round(task.written[-1] or window.length, 3)})


def _window(media: Source, options: Mapping[str, Any], max_length: float | None = None
            ) -> av.Window:  # fmt: skip
    return av.clip_window(media.duration, float(options.get("start") or 0.0),
                          options.get("end"), options.get("duration"),
                          max_length=max_length)  # fmt: skip


# -- trim ------------------------------------------------------------------------------------


def trim(src: Path, source: SourceInfo, options: Mapping[str, Any], workdir: Path,
         limits: Limits, progress: ProgressFn) -> ToolOutput:  # fmt: skip
    """`start`..`end` (or `start` + `duration`), re-encoded so that the cut is frame-exact,
    in the source's format or `format`, with the codec, quality, bitrates and fps asked for."""
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
    task = _task(media, F(fmt), out, window.length, progress, limits)
    quality = options.get("quality")
    args = [*window.input_args(), "-i", input_url(src)]
    if video is not None:
        codec = av.video_codec(fmt, options.get("codec"))
        rate = av.fps_filter(options.get("fps"), video.fps)
        args += ["-map", f"0:{video.index}", *(["-vf", ",".join(rate)] if rate else []),
                 *av.video_args(codec, quality, options.get("videoBitrate"))]  # fmt: skip
    elif options.get("codec") or options.get("videoBitrate") or options.get("fps"):
        raise InvalidFieldError("codec", f"{fmt} holds no video; codec, videoBitrate and fps "
                                "apply to video formats.")  # fmt: skip
    if audio is not None:
        args += ["-map", f"0:{audio.index}",
                 *av.audio_args(fmt, audio.channels, quality, options.get("audioBitrate"))]
    task.run([*args, *output_args(fmt, out, strip=False)], 1.5 if video else 0.2)
    facts: dict[str, Any] = {"format": fmt, "start": window.start, "end": round(window.end, 3),
                             "duration": round(task.written[-1] or window.length, 3)}
    if video is not None:
        facts["codec"] = codec.name
    return ToolOutput([out], facts)


# -- gif -------------------------------------------------------------------------------------


def gif(src: Path, source: SourceInfo, options: Mapping[str, Any], workdir: Path,
        limits: Limits, progress: ProgressFn) -> ToolOutput:  # fmt: skip
    """An animated GIF of `start`..`end` (the first 5 s when no length is given), `width`
    pixels wide at `fps`, with a palette made for the clip (two passes)."""
    media = open_source(src, source, limits)
    video = _video(media, "A GIF")
    window = _window(media, options, GIF_DEFAULT_SECONDS)
    if window.length > GIF_MAX_SECONDS + 0.001:
        raise InvalidFieldError("duration", f"a GIF lasts at most {GIF_MAX_SECONDS:g} s; trim "
                                "to a video format for longer clips.")  # fmt: skip
    fps = float(options.get("fps", 12))
    frame = av.fit_frame(_size(video), int(options.get("width", 480)), None, even=False)
    filters = [*av.fps_filter(fps, video.fps or fps + 1), *frame.filters]
    out = workdir / "clip.gif"
    palette = workdir / "palette.png"
    task = _task(media, F.GIF, out, window.length, progress, limits)
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
    return ToolOutput([out], {"width": frame.width, "height": frame.height, "fps": fps,
                              "frames": frames, "start": window.start,
                              "duration": round(window.length, 3)})  # fmt: skip


# -- storyboard ------------------------------------------------------------------------------


def storyboard(src: Path, source: SourceInfo, options: Mapping[str, Any], workdir: Path,
               limits: Limits, progress: ProgressFn) -> ToolOutput:  # fmt: skip
    """`frames` frames spread evenly over the clip (each from the middle of its share), as
    one grid image `columns` tiles wide; the facts give each tile's time and place."""
    media = open_source(src, source, limits)
    video = _video(media, "A storyboard")
    window = _window(media, options)
    count = int(options.get("frames", 12))
    columns = min(int(options.get("columns", 4)), count)
    rows = -(-count // columns)
    tile = av.fit_frame(_size(video), int(options.get("width", 160)), None, even=False,
                        enlarge=True)  # fmt: skip
    step = window.length / count
    times = [window.start + step * (i + 0.5) for i in range(count)]
    task = _task(media, F.PNG, workdir / "tile.png", 0.0, progress, limits)
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
    grid = workdir / "grid.png"
    try:
        pyvips.Image.arrayjoin(tiles, across=columns, background=[0, 0, 0]).pngsave(str(grid))
    except pyvips.Error as exc:
        raise ConversionError("The storyboard could not be assembled.") from exc
    for png in pngs:
        png.unlink(missing_ok=True)
    out = workdir / f"storyboard.{fmt}"
    if fmt == "png":
        grid.rename(out)
    else:
        save_still(grid, fmt, _still_quality(options), out)
        grid.unlink()
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
    VIDEO, (TIMESTAMP, WIDTH, HEIGHT, FIT, FORMAT, QUALITY),
    poster_frame,
)  # fmt: skip
EXTRACT_AUDIO = Tool(
    "extract-audio", "The audio track as mp3, m4a, wav, ogg or flac, whole or a part of it.",
    VIDEO | AUDIO, (AUDIO_FORMAT, *CLIP, AUDIO_BITRATE, QUALITY),
    extract_audio,
)  # fmt: skip
TRIM = Tool(
    "trim", "A part of a video or audio file (start..end or start + duration), cut exactly.",
    VIDEO | AUDIO, (*CLIP, CLIP_FORMAT, *ENCODING),
    trim,
)  # fmt: skip
GIF = Tool(
    "gif", "An animated GIF of a part of a video (the first 5 s unless told), at most 60 s.",
    VIDEO, (*CLIP, GIF_WIDTH, GIF_FPS), gif,
)  # fmt: skip
STORYBOARD = Tool(
    "storyboard", "Frames spread over a video, as one grid image with each tile's time.",
    VIDEO, (FRAMES, COLUMNS, TILE_WIDTH, *CLIP, FORMAT, QUALITY),
    storyboard,
)  # fmt: skip
TOOLS = (POSTER_FRAME, EXTRACT_AUDIO, TRIM, GIF, STORYBOARD)
