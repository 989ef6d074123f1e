"""ffmpeg arguments from parsed transform values: the clip window, frame size and fit,
frame rate, the video encoder with its quality or bitrate, and the audio encoder.

Everything here is pure: values in (already validated by `transforms.parse` against the rows
of table.py), argument lists and sizes out. The media tools run them (converters/tools).

Quality is one scale for every encoder: a name (very_low ... very_high) or 1-100 picks a
point on it, and each encoder maps that point onto its own setting (CRF for x264, x265, VP9
and SVT-AV1, LAME's VBR level, an AAC or Opus bitrate) through a curve measured to look
alike across encoders: "medium" is what each encoder's authors give as a sensible default.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from convertly.errors import InvalidFieldError

Curve = tuple[tuple[int, int], ...]  # (quality 1-100, encoder setting), interpolated

# A quality name's point on the 1-100 scale.
QUALITY_LEVELS = {"very_low": 20, "low": 45, "medium": 65, "high": 82, "very_high": 95}
DEFAULT_QUALITY = "medium"


@dataclass(frozen=True)
class VideoCodec:
    """One video encoder: the ffmpeg encoder, its speed options, the CRF curve (quality ->
    CRF, lower is better), the containers that hold it, options those need, and `work`:
    seconds of work per second of 1080p30 for timeouts (~3x what was measured)."""

    name: str
    encoder: str
    speed: tuple[str, ...]
    crf: Curve
    containers: frozenset[str]
    extra: tuple[str, ...] = ()  # always
    crf_extra: tuple[str, ...] = ()  # with a CRF (VP9 needs a zero bitrate for pure CRF)
    work: float = 1.5


# Speeds chosen for 2-core workers. 5 s of 1080p30 on a busy 2-core machine: x264 veryfast
# 9.0 s (see converters/media/ffmpeg.py), x265 ultrafast 15.2 s, VP9 realtime cpu-used 8
# 4.5 s, SVT-AV1 preset 10 4.3 s (libaom-av1 is far slower at any setting).
_MP4_MOV = frozenset({"mp4", "mov"})
_WEBM_MP4 = frozenset({"webm", "mp4"})
VIDEO_CODECS: dict[str, VideoCodec] = {
    "h264": VideoCodec(
        "h264", "libx264", ("-preset", "veryfast"), ((1, 45), (65, 26), (82, 23), (100, 18)),
        _MP4_MOV,
    ),
    "h265": VideoCodec(
        "h265", "libx265", ("-preset", "ultrafast", "-x265-params", "log-level=error"),
        ((1, 45), (65, 30), (82, 26), (100, 20)), _MP4_MOV, extra=("-tag:v", "hvc1"), work=3.0,
    ),
    "vp9": VideoCodec(
        "vp9", "libvpx-vp9", ("-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1"),
        ((1, 60), (65, 38), (82, 33), (100, 15)), _WEBM_MP4, crf_extra=("-b:v", "0"), work=2.0,
    ),
    "av1": VideoCodec(
        "av1", "libsvtav1", ("-preset", "10"), ((1, 60), (65, 38), (82, 32), (100, 18)),
        _WEBM_MP4, work=2.0,
    ),
}
# The codec a container gets when none is asked for.
DEFAULT_CODEC = {"mp4": "h264", "mov": "h264", "webm": "vp9"}

# Audio: quality -> setting. AAC and Opus bitrates are for stereo (scaled by channels).
AAC_KBPS: Curve = ((1, 48), (65, 128), (82, 160), (100, 256))
OPUS_KBPS: Curve = ((1, 24), (65, 96), (82, 128), (100, 192))
MP3_VBR: Curve = ((1, 9), (65, 4), (82, 2), (100, 0))  # LAME -V: 0 best, 9 smallest
VORBIS_QUALITY: Curve = ((1, 0), (65, 5), (82, 6), (100, 10))


def quality_point(quality: str | int | float | None) -> int:
    """A quality name or number as a point on the 1-100 scale (medium when absent)."""
    if quality is None:
        return QUALITY_LEVELS[DEFAULT_QUALITY]
    if isinstance(quality, str):
        if quality not in QUALITY_LEVELS:
            raise InvalidFieldError(
                "quality", f"'{quality}' is not one of {', '.join(QUALITY_LEVELS)} or 1-100."
            )
        return QUALITY_LEVELS[quality]
    return max(1, min(100, round(quality)))


def interpolate(point: int, curve: Curve) -> int:
    value = max(curve[0][0], min(curve[-1][0], point))
    for (x0, y0), (x1, y1) in itertools.pairwise(curve):
        if x0 <= value <= x1:
            return round(y0 + (y1 - y0) * (value - x0) / (x1 - x0))
    raise ValueError(f"{point} is outside {curve}")


# -- the clip --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The part of the source a tool reads: from `start`, `length` seconds."""

    start: float
    length: float

    @property
    def end(self) -> float:
        return self.start + self.length

    def input_args(self) -> list[str]:
        """Before `-i`: seek (ffmpeg decodes from the keyframe before and drops what precedes
        `start`, so the cut is frame-exact when encoding) and read no further than the end."""
        return ["-ss", f"{self.start:.3f}", "-t", f"{self.length:.3f}"]


def clip_window(
    source_seconds: float,
    start: float = 0.0,
    end: float | None = None,
    duration: float | None = None,
    *,
    max_length: float | None = None,
) -> Window:
    """The window `start`..`end` (or `start` + `duration`) inside a source of
    `source_seconds`; past the source's end it stops there. `max_length` caps a window whose
    length the caller did not give. Raises InvalidFieldError naming the field at fault."""
    if end is not None and duration is not None:
        raise InvalidFieldError("duration", "send end or duration, not both.")
    if source_seconds > 0 and start >= source_seconds:
        raise InvalidFieldError(
            "start", f"{start:g} s is not before the end of the source ({source_seconds:.3f} s)."
        )
    if end is not None:
        if end <= start:
            raise InvalidFieldError("end", f"{end:g} s is not after start ({start:g} s).")
        length = end - start
    elif duration is not None:
        length = duration
    else:
        length = max(source_seconds - start, 0.0)
        if max_length is not None:
            length = min(length, max_length)
    if source_seconds > 0:
        length = min(length, source_seconds - start)
    return Window(start, max(length, 0.001))


# -- frame size --------------------------------------------------------------------------------

FITS = ("cover", "contain", "fill", "inside", "outside")
MAX_FRAME_SIDE = 8192  # pixels: past this no encoder here writes video or a still


@dataclass(frozen=True)
class Frame:
    """Filters giving frames of `source` size their output size, and that size."""

    filters: tuple[str, ...]
    width: int
    height: int


def fit_frame(
    source: tuple[int, int],
    width: int | None,
    height: int | None,
    fit: str = "inside",
    *,
    background: str = "black",
    even: bool = True,
    enlarge: bool = False,
    rescale: bool = False,
) -> Frame:
    """Scale (and crop or pad) frames of `source` size to `width` x `height` by `fit`:

    cover crops to fill the box, contain pads to it (with `background`, an ffmpeg colour),
    fill stretches, inside fits within it and outside covers it keeping the aspect ratio.
    One side given keeps the aspect ratio. `even` rounds sides down to even numbers (4:2:0
    video); without `enlarge` nothing grows past the source (contain still pads the box).
    `rescale`: the decoded frames are not `source` in size (non-square pixels, `source` the
    size shown), so they are always scaled.
    """
    sw, sh = source
    if width is None and height is None:
        return _finish([], sw, sh, (sw, sh), even, resize=rescale)
    if width is None or height is None:
        scale = (width / sw) if width is not None else (height or sh) / sh
        if not enlarge:
            scale = min(scale, 1.0)
        w, h = max(1, round(sw * scale)), max(1, round(sh * scale))
        return _finish([], w, h, (w, h), even, resize=rescale or (w, h) != (sw, sh))
    if fit not in FITS:
        raise InvalidFieldError("fit", f"'{fit}' is not one of {', '.join(FITS)}.")
    if fit == "fill":
        return _finish([], width, height, (width, height), even, resize=True)
    wide = width / sw
    tall = height / sh
    scale = max(wide, tall) if fit in ("cover", "outside") else min(wide, tall)
    if not enlarge:
        scale = min(scale, 1.0)
    w, h = max(1, round(sw * scale)), max(1, round(sh * scale))
    if fit == "cover":
        box_w, box_h = min(width, w), min(height, h)
        crop = [f"crop={_even(box_w, even)}:{_even(box_h, even)}"] if (box_w, box_h) != (w, h) \
            else []  # fmt: skip
        return _finish(crop, box_w, box_h, (w, h), even, resize=rescale or (w, h) != (sw, sh))
    if fit == "contain":
        pad = [f"pad={_even(width, even)}:{_even(height, even)}:(ow-iw)/2:(oh-ih)/2:"
               f"color={background}"]  # fmt: skip
        return _finish(pad, width, height, (w, h), even, resize=rescale or (w, h) != (sw, sh))
    return _finish([], w, h, (w, h), even, resize=rescale or (w, h) != (sw, sh))


def _finish(after: list[str], width: int, height: int, scaled: tuple[int, int], even: bool,
            *, resize: bool = False) -> Frame:  # fmt: skip
    filters: list[str] = []
    # An odd side cannot be held by 4:2:0 frames: scale to the even size below it.
    resize = resize or (even and (scaled[0] % 2 == 1 or scaled[1] % 2 == 1))
    if resize:
        filters.append(f"scale={_even(scaled[0], even)}:{_even(scaled[1], even)}")
    filters += after
    if resize:
        filters.append("setsar=1")
    return Frame(tuple(filters), _even(width, even), _even(height, even))


def _even(value: int, even: bool) -> int:
    return max(2, value - value % 2) if even else max(1, value)


# -- encoders --------------------------------------------------------------------------------


def video_codec(container: str, codec: str | None) -> VideoCodec:
    """The encoder for `container` (its usual one when `codec` is None)."""
    chosen = VIDEO_CODECS[codec or DEFAULT_CODEC[container]]
    if container not in chosen.containers:
        fits = " or ".join(sorted(chosen.containers))
        raise InvalidFieldError(
            "codec", f"{chosen.name} is written to {fits}, not {container}; choose one of "
            "those formats or another codec.",
        )  # fmt: skip
    return chosen


def video_args(codec: VideoCodec, quality: str | int | float | None = None,
               kbps: int | None = None) -> list[str]:  # fmt: skip
    """Encoder arguments: a constant quality (CRF from `quality`), or an average `kbps`."""
    args = ["-c:v", codec.encoder, *codec.speed, *codec.extra, "-pix_fmt", "yuv420p"]
    if kbps:
        return [*args, "-b:v", f"{kbps}k"]
    crf = interpolate(quality_point(quality), codec.crf)
    return [*args, "-crf", str(crf), *codec.crf_extra]


def crf_for(codec: str, quality: str | int | float | None) -> int:
    return interpolate(quality_point(quality), VIDEO_CODECS[codec].crf)


def audio_args(fmt: str, channels: int, quality: str | int | float | None = None,
               kbps: int | None = None) -> list[str]:  # fmt: skip
    """Audio encoder arguments for an audio file or a video container of format `fmt`."""
    point = quality_point(quality)
    stereo = max(1, min(channels or 2, 2))
    match fmt:
        case "mp4" | "mov" | "m4a":
            rate = kbps or _scaled(interpolate(point, AAC_KBPS), channels)
            return ["-c:a", "aac", "-b:a", f"{rate}k"]
        case "webm":
            rate = kbps or _scaled(interpolate(point, OPUS_KBPS), stereo)
            return ["-c:a", "libopus", "-b:a", f"{rate}k", "-ac", str(stereo)]
        case "mp3":
            args = ["-c:a", "libmp3lame", *(["-ac", "2"] if channels > 2 else [])]
            if kbps:
                return [*args, "-b:a", f"{kbps}k"]
            return [*args, "-q:a", str(interpolate(point, MP3_VBR))]
        case "ogg":
            if kbps:
                return ["-c:a", "libvorbis", "-b:a", f"{kbps}k"]
            return ["-c:a", "libvorbis", "-q:a", str(interpolate(point, VORBIS_QUALITY))]
        case "flac":
            return ["-c:a", "flac", "-compression_level", "8"]
        case "wav":
            return ["-c:a", "pcm_s16le"]
    raise ValueError(f"no audio encoder for {fmt}")


def _scaled(stereo_kbps: int, channels: int) -> int:
    return max(16, stereo_kbps * max(channels, 1) // 2)


def fps_filter(fps: float | None, source_fps: float | None) -> list[str]:
    """An fps filter when `fps` lowers the source's rate (frames are never invented)."""
    if fps is None or (source_fps is not None and fps >= source_fps):
        return []
    return [f"fps={fps:g}"]
