"""One media conversion: the task every step works on, and the targets it can have.

A `Task` holds what the video (video.py), audio (audio.py) and compress (compress.py) paths
need: the source and its probe, the spec, the target and the output path. It runs
ffmpeg with a timeout scaled to the work and this file's share of the progress, notices a
source that ends before it says it does, and builds the ConvertedFile. `cover_args` keeps
the source's cover art where the target holds one.

CONVERTLY_MAX_MEDIA_SECONDS is checked against the duration the container declares before
anything runs, and enforced while converting, because a header can lie: every output stops
at the limit (`-t`), and each run also copies the source's packets to nowhere up to
LENGTH_MARGIN past it, so that ffmpeg's progress tells whether the source goes on. A source
read more than LENGTH_TOLERANCE past the limit fails with MEDIA_TOO_LONG.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from convertly.converters.base import ProgressFn
from convertly.converters.media.ffmpeg import (
    PROGRESS_PERIOD,
    MediaInfo,
    ProgressReader,
    Stream,
    length_check_output,
    output_args,
    run_ffmpeg,
    seconds_label,
)
from convertly.errors import MediaTooLongError
from convertly.models import ConvertedFile, FileSpec, JobType, OutputFormat, mime_for

F = OutputFormat
VIDEO_TARGETS = (F.MP4, F.WEBM, F.MOV)
AUDIO_TARGETS = (F.MP3, F.WAV, F.OGG, F.M4A, F.FLAC)
ANIMATION_TARGETS = (F.GIF, F.WEBP)
FRAME_TARGETS = (F.JPG, F.PNG, F.AVIF, F.TIFF, F.HEIF)

# Timeouts: base + factor x duration x (source pixels / 1080p, at least 1) x (fps / 30, at
# least 1). The factors are ~3x the seconds of work per second of 1080p30 media measured on
# 2 cores (x264 veryfast 0.46, VP9 realtime 0.58, MP3 0.01).
BASE_TIMEOUT = 60.0
_FULL_HD = 1920 * 1080
WORK_FACTOR = {"mp4": 1.5, "mov": 1.5, "webm": 2.0, "gif": 2.0, "webp": 3.0, "audio": 0.2,
               "copy": 0.2, "frame": 0.0}  # fmt: skip
_COVER_TARGETS = frozenset({F.MP3, F.M4A, F.FLAC})
# Seconds past CONVERTLY_MAX_MEDIA_SECONDS: how far a run reads the source (to see whether it
# goes on), and how far past the limit its packets may end before the file is too long
# (packet and frame timing; a source that declares the limit may end a little after it).
# Copied packets are cut in decoding order, which runs behind the presentation times by the
# frames a codec reorders (B-frames): the margin leaves room for that.
LENGTH_MARGIN = 3.0
LENGTH_TOLERANCE = 0.5


@dataclass(frozen=True)
class Task:
    """One conversion: what every step needs to know."""

    src: Path
    spec: FileSpec
    target: OutputFormat
    info: MediaInfo
    duration: float  # seconds; 0 for a still GIF
    out: Path
    report: ProgressFn
    base_timeout: float = BASE_TIMEOUT
    timeout_factor: float = 1.0
    progress_period: float = PROGRESS_PERIOD
    max_seconds: int | None = None  # CONVERTLY_MAX_MEDIA_SECONDS; None: no limit
    written: list[float] = field(default_factory=list)  # seconds each ffmpeg run wrote

    @property
    def workdir(self) -> Path:
        return self.out.parent

    @property
    def compress(self) -> bool:
        return self.spec.job_type is JobType.COMPRESS

    def timeout(self, work: float) -> float:
        """`work`: seconds of work per second of 1080p30 media (see WORK_FACTOR)."""
        scale = 1.0
        if (video := self.info.video) is not None:
            scale = max(1.0, video.width * video.height / _FULL_HD)
            scale *= max(1.0, (video.fps or 30) / 30)
        return self.base_timeout + self.timeout_factor * work * self.duration * scale

    def run(self, args: list[str], work: float, span: tuple[float, float] = (0.0, 1.0),
            report: ProgressFn | None = None) -> None:  # fmt: skip
        """Run ffmpeg; its progress fills `span` of this file's progress."""
        reader = ProgressReader(self.duration or None, report or self.report, *span)
        run_ffmpeg(args, timeout=self.timeout(work), reader=reader, workdir=self.workdir,
                   progress_period=self.progress_period)  # fmt: skip
        self.written.append(reader.seconds)
        self.check_length(reader.seconds)

    def check_length(self, seconds: float) -> None:
        """MEDIA_TOO_LONG when `seconds` of the source were read past the limit (and the
        output, cut at the limit, is removed)."""
        if self.max_seconds is None or seconds <= self.max_seconds + LENGTH_TOLERANCE:
            return
        self.out.unlink(missing_ok=True)
        raise MediaTooLongError(
            f"The file lasts more than {self.max_seconds:,} s, this server's limit "
            f"(CONVERTLY_MAX_MEDIA_SECONDS), although its header says "
            f"{seconds_label(self.duration)}. Send a shorter file or ask the operator to raise "
            "the limit.",
            detail={"maxSeconds": self.max_seconds, "declaredSeconds": round(self.duration, 3)},
        )

    def source_cap(self) -> list[str]:
        """Input options that stop reading the source LENGTH_MARGIN past the limit (for a
        run whose output says nothing of the source's length, such as a GIF palette)."""
        return [] if self.max_seconds is None else ["-t", f"{self.length_cap:g}"]

    @property
    def length_cap(self) -> float | None:
        return None if self.max_seconds is None else self.max_seconds + LENGTH_MARGIN

    def truncation(self, *streams: Stream | None) -> list[str]:
        """A note when the last run wrote clearly less than the streams announce (ffmpeg
        converts what it can decode of a truncated file and exits successfully)."""
        known = [s.duration for s in streams if s is not None and s.duration]
        expected = max(known) if known else self.duration
        got = self.written[-1] if self.written else expected
        if expected and got < expected - max(0.5, 0.05 * expected):
            return [f"The source ends after {seconds_label(got)} of the {seconds_label(expected)}"
                    " it announces; it may be truncated. What could be decoded was converted."]
        return []

    def output(self) -> list[str]:
        """The output (cut at the limit), then the length check's (see the docstring)."""
        if self.max_seconds is None:
            return output_args(self.target.value, self.out, strip=self.spec.strip_metadata)
        return ["-t", str(self.max_seconds),
                *output_args(self.target.value, self.out, strip=self.spec.strip_metadata),
                *length_check_output(self.length_cap)]  # fmt: skip

    def result(
        self, notes: list[str], quality: int | None = None, size: tuple[int, int] | None = None
    ) -> ConvertedFile:
        return ConvertedFile(
            path=str(self.out),
            format=self.target.value,
            mime_type=mime_for(self.target.value),
            applied_quality=quality,
            width=size[0] if size else None,
            height=size[1] if size else None,
            notes=tuple(notes),
        )


def cover_args(task: Task) -> list[str]:
    """Keep the source's cover art where the target holds one (unless metadata must go)."""
    cover = task.info.cover
    if cover is None or task.spec.strip_metadata or task.target not in _COVER_TARGETS:
        return []
    return ["-map", f"0:{cover.index}", "-c:v", "copy", "-disposition:v", "attached_pic"]
