"""ffprobe and ffmpeg plumbing for the media converter: probing, running, progress.

Everything runs through `convertly.converters.process.run`. Inputs are passed as `file:` URLs
so that a name is never read as a protocol or an option.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convertly.converters.base import ProgressFn
from convertly.converters.process import Completed, run, which
from convertly.errors import ConversionError, CorruptFileError

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 30.0
PROGRESS_PERIOD = 0.5  # seconds between ffmpeg's progress blocks
PROGRESS_STEP = 0.01  # a fraction is passed on once it grew by this much
_ALPHA_PREFIXES = ("yuva", "rgba", "bgra", "argb", "abgr", "ya", "gbrap", "pal8")


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


def input_url(path: Path) -> str:
    return f"file:{path}"


def probe(src: Path, *, timeout: float = PROBE_TIMEOUT) -> MediaInfo:
    """Read `src`'s container and streams; an unreadable file raises CorruptFileError."""
    done = run(
        [
            which("ffprobe"), "-v", "error", "-print_format", "json",
            "-show_format", "-show_streams", input_url(src),
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
    except (ValueError, TypeError, AttributeError) as exc:
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


def measure_duration(src: Path, *, timeout: float) -> float | None:
    """Duration found by reading every packet (for files whose header does not say it)."""
    reader = ProgressReader(None, lambda _fraction: None)
    run_ffmpeg(
        ["-i", input_url(src), "-map", "0:v?", "-map", "0:a?", "-c", "copy", "-f", "null", "-"],
        timeout=timeout,
        reader=reader,
        workdir=src.parent,
    )
    return reader.seconds or None


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
    degrees: float | None = None
    for side_data in raw.get("side_data_list", []):
        if "rotation" in side_data:
            degrees = _float(side_data["rotation"])
    if degrees is None:
        degrees = _float(raw.get("tags", {}).get("rotate"))
    if degrees is None:
        return 0
    return (round(degrees / 90) * 90) % 360


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

    Raises ConversionTimeoutError after `timeout` s (ffmpeg is killed) and ConversionError
    when ffmpeg fails, with its last error line (scratch paths removed).
    """
    argv = [
        which("ffmpeg"), "-hide_banner", "-nostdin", "-nostats", "-v", "error",
        "-progress", "pipe:1", "-stats_period", f"{progress_period:g}", "-y", *args,
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
