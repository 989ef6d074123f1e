"""ffprobe and ffmpeg for the media converter: probing, running with progress, and the
arguments for frame geometry, encoders and muxers.

Everything runs through `convertly.converters.process.run`. Inputs are passed as `file:` URLs
so that a name is never read as a protocol or an option, and are read only by the demuxers of
the kinds we accept (SOURCE_GUARD): ffmpeg picks a demuxer from the content, and a file that
sniffs as MP3 (an ID3 tag) may hold an HLS or concat playlist naming other files or URLs.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from convertly.converters.base import ProgressFn
from convertly.converters.process import Completed, run, which
from convertly.converters.resize import ResizePlan
from convertly.errors import ConversionError, CorruptFileError

PROBE_TIMEOUT = 30.0
PROGRESS_PERIOD = 0.5  # seconds between ffmpeg's progress blocks
PROGRESS_STEP = 0.01  # a fraction is passed on once it grew by this much
_ALPHA_PREFIXES = ("yuva", "rgba", "bgra", "argb", "abgr", "ya", "gbrap", "pal8")
# Input options for the source: only the demuxers of the kinds sniff.py accepts (mov also
# reads mp4 and m4a; aac for ADTS files, which sniff as MP3) and only the file protocol, so
# no playlist (hls, concat) or reference ever opens another file or a URL.
SOURCE_DEMUXERS = ("mov", "mp4", "m4a", "matroska", "webm", "mp3", "aac", "wav", "ogg", "flac",
                   "gif")
SOURCE_GUARD = ("-format_whitelist", ",".join(SOURCE_DEMUXERS), "-protocol_whitelist", "file")


@dataclass(frozen=True)
class Stream:
    """One audio or video stream as ffprobe reports it."""

    index: int
    kind: str  # "video", "audio", ...
    codec: str
    width: int = 0
    height: int = 0
    rotation: int = 0  # 0, 90, 180 or 270 degrees
    sample_aspect: float = 1.0
    pix_fmt: str = ""
    fps: float | None = None  # average frame rate
    frame_rate: float | None = None  # base rate: the finest timing of a variable-rate stream
    channels: int = 0
    sample_rate: int = 0
    bits: int = 0  # bits per sample of PCM / lossless audio; 0 when unknown or lossy
    duration: float | None = None
    attached_picture: bool = False  # cover art stored as a video stream

    @property
    def oriented_size(self) -> tuple[int, int]:
        """Coded size after the rotation players (and ffmpeg's autorotate) apply."""
        if self.rotation in (90, 270):
            return self.height, self.width
        return self.width, self.height

    @property
    def display_size(self) -> tuple[int, int]:
        """What a player shows: rotation and non-square pixels applied."""
        width = max(1, round(self.width * self.sample_aspect))
        if self.rotation in (90, 270):
            return self.height, width
        return width, self.height

    @property
    def has_alpha(self) -> bool:
        return self.pix_fmt.startswith(_ALPHA_PREFIXES)


@dataclass(frozen=True)
class MediaInfo:
    """What ffprobe found in a file."""

    format_name: str
    duration: float | None
    streams: tuple[Stream, ...]

    @property
    def video(self) -> Stream | None:
        """The first real video stream (cover art does not count)."""
        return next(
            (s for s in self.streams if s.kind == "video" and not s.attached_picture), None
        )

    @property
    def audio(self) -> Stream | None:
        return next((s for s in self.streams if s.kind == "audio"), None)

    @property
    def cover(self) -> Stream | None:
        """Cover art: a JPEG or PNG picture attached to the audio."""
        return next(
            (s for s in self.streams if s.attached_picture and s.codec in ("mjpeg", "png")), None
        )


def input_url(path: Path) -> str:
    return f"file:{path}"


def probe(src: Path, *, timeout: float = PROBE_TIMEOUT) -> MediaInfo:
    """Read `src`'s container and streams; an unreadable file raises CorruptFileError."""
    done = run(
        [
            which("ffprobe"), "-v", "error", "-print_format", "json",
            "-show_format", "-show_streams", *SOURCE_GUARD, input_url(src),
        ],
        timeout=timeout,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise CorruptFileError(
            "The file cannot be read as audio or video (ffprobe: "
            f"{_last_line(done.stderr_tail, src) or 'no details'}); it may be truncated or "
            "damaged."
        )
    try:
        data = json.loads(done.stdout)
        streams = tuple(_stream(s) for s in data.get("streams", []))
        fmt = data.get("format", {})
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise CorruptFileError("ffprobe could not describe the file.") from exc
    info = MediaInfo(
        format_name=str(fmt.get("format_name", "")),
        duration=_float(fmt.get("duration")),
        streams=streams,
    )
    if info.video is None and info.audio is None:
        raise CorruptFileError("The file holds no audio or video stream we can decode.")
    if info.duration is None:
        known = [s.duration for s in streams if s.duration is not None]
        info = MediaInfo(info.format_name, max(known) if known else None, streams)
    return info


def measure_duration(src: Path, *, timeout: float, cap: float | None = None) -> float | None:
    """Duration found by reading every packet (for files whose header does not say it or
    may lie), reading no further than `cap` seconds when given."""
    reader = ProgressReader(None, lambda _fraction: None)
    run_ffmpeg(
        ["-i", input_url(src), *length_check_output(cap)],
        timeout=timeout,
        reader=reader,
        workdir=src.parent,
    )
    return reader.seconds or None


def length_check_output(cap: float | None) -> list[str]:
    """An output that copies the source's packets to nowhere, up to `cap` seconds: with it,
    ffmpeg's progress tells how long the source really is (its header may lie), whatever
    the other outputs of the run write. Cover art is left out: a single picture would keep
    the output open, and the source being read, to its end."""
    limit = [] if cap is None else ["-t", f"{cap:g}"]
    return ["-map", "0:V?", "-map", "0:a?", "-c", "copy", *limit, "-f", "null", "-"]


def _stream(raw: dict[str, Any]) -> Stream:
    return Stream(
        index=int(raw["index"]),
        kind=str(raw.get("codec_type", "")),
        codec=str(raw.get("codec_name", "")),
        width=int(raw.get("width") or 0),
        height=int(raw.get("height") or 0),
        rotation=_rotation(raw),
        sample_aspect=_ratio(raw.get("sample_aspect_ratio")) or 1.0,
        pix_fmt=str(raw.get("pix_fmt", "")),
        fps=_ratio(raw.get("avg_frame_rate")) or _ratio(raw.get("r_frame_rate")),
        frame_rate=_ratio(raw.get("r_frame_rate")),
        channels=int(raw.get("channels") or 0),
        sample_rate=int(raw.get("sample_rate") or 0),
        bits=int(raw.get("bits_per_raw_sample") or raw.get("bits_per_sample") or 0),
        duration=_float(raw.get("duration")),
        attached_picture=bool(raw.get("disposition", {}).get("attached_pic")),
    )


def _rotation(raw: dict[str, Any]) -> int:
    """The display matrix's rotation (phones write -90 as often as 90), else the older tag."""
    values = [d["rotation"] for d in raw.get("side_data_list", []) if "rotation" in d]
    values.append(raw.get("tags", {}).get("rotate", 0))
    try:
        degrees = float(values[0])
    except (TypeError, ValueError):
        return 0
    return (round(degrees / 90) * 90) % 360 if math.isfinite(degrees) else 0


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _ratio(value: Any) -> float | None:
    """'30000/1001' -> 29.97; '0/0', '0:1' and garbage -> None."""
    if not isinstance(value, str):
        return None
    num, sep, den = value.replace(":", "/").partition("/")
    try:
        result = float(num) / float(den) if sep else float(num)
    except (ValueError, ZeroDivisionError):
        return None
    return result if math.isfinite(result) and result > 0 else None


# -- running ---------------------------------------------------------------------------------


class ProgressReader:
    """Turns ffmpeg's `-progress` blocks into fractions of `duration`, mapped onto
    [`start`, `end`] of the whole conversion and passed on in steps of at least 1 %.

    ffmpeg ≤ 6 writes microseconds in both `out_time_us` and `out_time_ms`. An exception
    raised by the callback stops the reporting and is re-raised by `run_ffmpeg` once ffmpeg
    has finished (the reader thread must keep draining ffmpeg's output).
    """

    def __init__(
        self, duration: float | None, report: ProgressFn, start: float = 0.0, end: float = 1.0
    ) -> None:
        self.duration = duration
        self.report = report
        self.start = start
        self.end = end
        self.seconds = 0.0  # output time written so far
        self.finished = False
        self.error: BaseException | None = None
        self._last = start

    def __call__(self, line: str) -> None:
        key, _, value = line.partition("=")
        if key in ("out_time_us", "out_time_ms"):
            try:
                self.seconds = max(self.seconds, int(value) / 1_000_000)
            except ValueError:
                return
            if self.duration:
                done = min(self.seconds / self.duration, 0.999)
                self._emit(self.start + (self.end - self.start) * done, force=False)
        elif key == "progress" and value == "end":
            self.finished = True
            self._emit(self.end, force=True)

    def _emit(self, fraction: float, *, force: bool) -> None:
        if self.error is not None or fraction <= self._last:
            return
        if not force and fraction - self._last < PROGRESS_STEP:
            return
        self._last = fraction
        try:
            self.report(fraction)
        except Exception as exc:
            self.error = exc


def run_ffmpeg(
    args: Sequence[str | Path],
    *,
    timeout: float,
    reader: ProgressReader,
    workdir: Path,
    progress_period: float = PROGRESS_PERIOD,
) -> Completed:
    """Run ffmpeg with `args` (inputs, filters, outputs), progress every `progress_period` s.
    `args` start with the source: SOURCE_GUARD applies to the first input only.

    Raises ConversionTimeoutError after `timeout` s (ffmpeg is killed) and ConversionError
    when ffmpeg fails, with its last error line (scratch paths removed).
    """
    argv = [
        which("ffmpeg"), "-hide_banner", "-nostdin", "-nostats", "-v", "error",
        "-progress", "pipe:1", "-stats_period", f"{progress_period:g}", "-y", *SOURCE_GUARD,
        *args,
    ]  # fmt: skip
    done = run(argv, timeout=timeout, on_line=reader, check=False, cwd=workdir)
    if reader.error is not None:
        raise reader.error
    if done.returncode != 0:
        detail = _last_line(done.stderr_tail, workdir) or "no error output"
        raise ConversionError(
            f"ffmpeg could not convert the file (exit status {done.returncode}): {detail}. "
            "The file may be damaged or use a codec this server cannot decode.",
            detail={"exitStatus": done.returncode},
        )
    return done


def _last_line(text: str, private: Path) -> str:
    for line in reversed(text.splitlines()):
        if line.strip():
            # Scratch paths mean nothing to the caller.
            return line.strip().replace(f"file:{private}", "input").replace(str(private), "")[
                :300
            ]
    return ""


def seconds_label(seconds: float) -> str:
    """1.5 -> '0:01.5', 75 -> '1:15.0'."""
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:04.1f}"


# -- frame geometry --------------------------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """Filters that give the (autorotated) frames their output size, and that size."""

    filters: tuple[str, ...]
    width: int
    height: int


def geometry(video: Stream, plan: ResizePlan, *, even: bool) -> Geometry:
    """Scale, crop and pad filters turning `video`'s frames into `plan`'s output.

    `plan` is made from the display size (rotation and pixel aspect applied). `even` keeps
    both sides even, as 4:2:0 video needs: an odd side loses its last pixel (so nothing is
    ever enlarged past the plan).
    """
    oriented = video.oriented_size
    scale = (plan.scaled_width, plan.scaled_height) != oriented
    scaled = (plan.scaled_width, plan.scaled_height) if scale else oriented
    if scale and even:
        scaled = (_even_down(scaled[0]), _even_down(scaled[1]))
    width = scaled[0] if plan.width == plan.scaled_width else plan.width
    height = scaled[1] if plan.height == plan.scaled_height else plan.height
    if even:
        width, height = _even_down(width), _even_down(height)
    filters: list[str] = []
    if scale:
        filters.append(f"scale={scaled[0]}:{scaled[1]}")
    if width < scaled[0] or height < scaled[1]:
        filters.append(f"crop={min(width, scaled[0])}:{min(height, scaled[1])}")
    if width > scaled[0] or height > scaled[1]:
        filters.append(f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=white")
    if scale or video.sample_aspect != 1:
        filters.append("setsar=1")
    return Geometry(tuple(filters), width, height)


def _even_down(value: int) -> int:
    return max(2, value - value % 2)


def shrink(plan: ResizePlan, factor: float) -> ResizePlan:
    """`plan` with every output dimension multiplied by `factor` (< 1)."""

    def scaled(value: int) -> int:
        return max(1, round(value * factor))

    return replace(
        plan,
        scaled_width=scaled(plan.scaled_width),
        scaled_height=scaled(plan.scaled_height),
        width=scaled(plan.width),
        height=scaled(plan.height),
    )


def filter_graph(
    video: Stream,
    filters: Sequence[str],
    *,
    flatten: bool,
    finish: Sequence[str] = (),
    out: str = "v",
) -> str:
    """A -filter_complex graph from `video` through `filters`, onto a white background when
    `flatten` (4:2:0 video and GIF hold no partial transparency), then `finish`, to [out]."""
    chain = f"[0:{video.index}]{','.join(filters) or 'null'}"
    if flatten:
        # After the timing filters: overlay forgets how long the last frame lasts.
        chain += (
            ",format=rgba,split[fg][bg];[bg]lutrgb=r=255:g=255:b=255:a=255[white];"
            "[white][fg]overlay=format=auto"
        )
    return f"{chain}{''.join(',' + f for f in finish)}[{out}]"


# -- encoders --------------------------------------------------------------------------------

# Measured on 2 cores, 30 s 1080p30 H.264 -> 720p: x264 veryfast 13.7 s (ultrafast and
# superfast are no faster there, decoding dominates, and 4x larger; faster 18.8 s; medium
# 50 s); VP9 realtime cpu-used 8 with row-mt 17.3 s (cpu-used 7: 24 s; good/5: 73 s).
X264_PRESET = "veryfast"
VP9_SPEED = ("-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1")
# compression (1-100, higher = better) -> encoder setting, interpolated between the points.
Curve = tuple[tuple[int, int], ...]
H264_CRF: Curve = ((1, 45), (82, 23), (100, 18))
VP9_CRF: Curve = ((1, 60), (82, 33), (100, 15))
AAC_KBPS: Curve = ((1, 48), (82, 160), (100, 256))  # for stereo; scaled by the channel count
OPUS_KBPS: Curve = ((1, 24), (82, 128), (100, 192))
MP3_VBR: Curve = ((1, 9), (82, 2), (100, 0))  # LAME -V: 0 best, 9 smallest
VORBIS_QUALITY: Curve = ((1, 0), (82, 6), (100, 10))
FLAC_LEVEL = 8
FLAC_SMALLEST_LEVEL = 12  # slowest and smallest; audio encodes fast anyway
_LOSSLESS_AUDIO = frozenset({"flac", "alac", "wavpack", "ape", "tta", "truehd"})
_MUXERS = {
    "mp4": "mp4", "mov": "mov", "webm": "webm", "mp3": "mp3", "wav": "wav", "ogg": "ogg",
    "m4a": "ipod", "flac": "flac", "gif": "gif", "webp": "webp",
}  # fmt: skip
_STRIP = (
    "-map_metadata", "-1", "-map_chapters", "-1",
    "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
)  # fmt: skip


@dataclass(frozen=True)
class Encoding:
    """Encoder arguments for one stream, what they mean for people, the quality applied."""

    args: tuple[str, ...]
    note: str
    quality: int | None = None


def interpolate(compression: int, curve: Curve) -> int:
    value = max(curve[0][0], min(curve[-1][0], compression))
    for (x0, y0), (x1, y1) in itertools.pairwise(curve):
        if x0 <= value <= x1:
            return round(y0 + (y1 - y0) * (value - x0) / (x1 - x0))
    raise ValueError(f"{compression} is outside {curve}")


def video_encoding(fmt: str, compression: int, kbps: int = 0) -> Encoding:
    """H.264 (mp4, mov) or VP9 (webm) at the CRF `compression` maps to, or at `kbps`."""
    if fmt == "webm":
        args = ["-c:v", "libvpx-vp9", *VP9_SPEED]
        if kbps:
            return Encoding((*args, "-b:v", f"{kbps}k"), f"VP9 {kbps} kb/s")
        crf = interpolate(compression, VP9_CRF)
        return Encoding((*args, "-crf", str(crf), "-b:v", "0"), f"VP9 CRF {crf}", compression)
    args = ["-c:v", "libx264", "-preset", X264_PRESET]
    if kbps:
        # A bounded rate keeps short clips from overshooting the average much.
        bounds = ("-maxrate", f"{kbps * 3 // 2}k", "-bufsize", f"{kbps * 2}k")
        return Encoding((*args, "-b:v", f"{kbps}k", *bounds), f"H.264 {kbps} kb/s")
    crf = interpolate(compression, H264_CRF)
    return Encoding((*args, "-crf", str(crf)), f"H.264 CRF {crf}", compression)


def video_audio_encoding(fmt: str, audio: Stream, compression: int, kbps: int = 0) -> Encoding:
    """The audio of a video container: AAC (mp4, mov) or Opus (webm, at most stereo here)."""
    rate = kbps or video_audio_kbps(fmt, audio, compression)
    if fmt == "webm":
        args = ("-c:a", "libopus", "-b:a", f"{rate}k", "-ac", str(_opus_channels(audio)))
        return Encoding(args, f"Opus {rate} kb/s")
    return Encoding(("-c:a", "aac", "-b:a", f"{rate}k"), f"AAC {rate} kb/s")


def video_audio_kbps(fmt: str, audio: Stream, compression: int) -> int:
    if fmt == "webm":
        return audio_kbps(OPUS_KBPS, compression, _opus_channels(audio))
    return audio_kbps(AAC_KBPS, compression, audio.channels)


def _opus_channels(audio: Stream) -> int:
    # libopus refuses some surround layouts ffmpeg decodes (5.1(side)): stereo is safe.
    return max(1, min(audio.channels or 2, 2))


def audio_kbps(curve: Curve, compression: int, channels: int) -> int:
    return max(16, interpolate(compression, curve) * max(channels, 1) // 2)


def audio_encoding(
    fmt: str, audio: Stream, compression: int, kbps: int = 0, *, smallest: bool = False,
    keep_pcm: bool = False,
) -> Encoding:  # fmt: skip
    """An audio file's stream: quality from `compression`, or `kbps` for the lossy formats.

    `smallest` spends CPU on size and drops the bits wav and flac could keep beyond 16;
    `keep_pcm` copies PCM into wav as it is.
    """
    match fmt:
        case "mp3":
            args = ("-c:a", "libmp3lame", *(("-ac", "2") if audio.channels > 2 else ()))
            if kbps:
                return Encoding((*args, "-b:a", f"{kbps}k"), f"MP3 {kbps} kb/s")
            vbr = interpolate(compression, MP3_VBR)
            return Encoding((*args, "-q:a", str(vbr)), f"MP3 VBR -V {vbr}", compression)
        case "ogg":
            if kbps:
                return Encoding(("-c:a", "libvorbis", "-b:a", f"{kbps}k"), f"Vorbis {kbps} kb/s")
            level = interpolate(compression, VORBIS_QUALITY)
            vorbis = ("-c:a", "libvorbis", "-q:a", str(level))
            return Encoding(vorbis, f"Vorbis quality {level}", compression)
        case "m4a":
            rate = kbps or audio_kbps(AAC_KBPS, compression, audio.channels)
            return Encoding(("-c:a", "aac", "-b:a", f"{rate}k"), f"AAC {rate} kb/s",
                            None if kbps else compression)  # fmt: skip
        case "flac":
            level = FLAC_SMALLEST_LEVEL if smallest else FLAC_LEVEL
            depth = () if is_deep(audio) and not smallest else ("-sample_fmt", "s16")
            return Encoding(("-c:a", "flac", "-compression_level", str(level), *depth),
                            f"FLAC level {level}")  # fmt: skip
        case "wav":
            if keep_pcm and audio.codec.startswith("pcm_"):
                return Encoding(("-c:a", "copy"), "WAV holds uncompressed audio; convert to "
                                "flac (lossless) or mp3, ogg or m4a for a smaller file")
            bits = 24 if is_deep(audio) and not smallest else 16
            return Encoding(("-c:a", f"pcm_s{bits}le"), f"{bits}-bit PCM")
    raise ValueError(f"no audio encoder for {fmt}")


def is_deep(audio: Stream) -> bool:
    """More than 16 bits per sample in a lossless source (worth keeping in wav and flac)."""
    lossless = audio.codec.startswith("pcm_") or audio.codec in _LOSSLESS_AUDIO
    return lossless and audio.bits > 16


def output_args(fmt: str, out: Path, *, strip: bool) -> list[str]:
    """Metadata, muxer options and the output file; `strip` drops tags, chapters and the
    encoder's version."""
    args = list(_STRIP) if strip else []
    if fmt in ("mp4", "mov", "m4a"):
        args += ["-movflags", "+faststart"]
    if fmt in ("gif", "webp"):
        args += ["-loop", "0"]
    return [*args, "-f", _MUXERS[fmt], str(out)]
