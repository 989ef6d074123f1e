"""Audio and video with ffmpeg: mp4 mov webm, animated gif and mp3 wav ogg flac m4a in.

Video becomes mp4 or mov (H.264 + AAC), webm (VP9 + Opus), audio (mp3, wav, ogg Vorbis, m4a
AAC, flac), an animated gif or webp, or one still frame (jpg png avif tiff heif, encoded by
the image converter). Audio becomes audio; GIFs become video. Every file is probed first
(ffprobe) so that the limits are checked before anything is decoded and progress has a
duration; the length limit is enforced while converting too (task.py), since a header can
lie. Compress never hands back a file larger than the original.

This module checks each file against the target and the compress options, opens it
(source.py: probed, the limits checked) and routes it: video.py makes video, animations and
still frames, audio.py audio, and compress.py reaches a target size and keeps whichever file
is smaller. Every step works on a Task (task.py).
"""

from __future__ import annotations

from pathlib import Path

from convertly.converters.base import Limits, ProgressFn, Queue, no_progress, target_of
from convertly.converters.media.audio import to_audio
from convertly.converters.media.compress import fits_already, keep_original
from convertly.converters.media.ffmpeg import PROGRESS_PERIOD, measure_duration
from convertly.converters.media.source import READ_BYTES_PER_SECOND, open_source
from convertly.converters.media.task import (
    ANIMATION_TARGETS,
    AUDIO_TARGETS,
    BASE_TIMEOUT,
    FRAME_TARGETS,
    VIDEO_TARGETS,
    Task,
)
from convertly.converters.media.video import to_animation, to_frame, to_video
from convertly.converters.registry import Registry
from convertly.errors import (
    InvalidFieldError,
    UnsupportedConversionError,
)
from convertly.models import (
    CompressMode,
    ConvertedFile,
    FileSpec,
    JobType,
    OutputFormat,
    ResizePreset,
    SourceInfo,
    extension_for,
)
from convertly.sniff import Kind

VIDEO_SOURCES = (Kind.MP4, Kind.MOV, Kind.WEBM)
AUDIO_SOURCES = (Kind.MP3, Kind.WAV, Kind.OGG, Kind.FLAC, Kind.M4A)
TARGETS: dict[Kind, tuple[OutputFormat, ...]] = {
    **{k: VIDEO_TARGETS + AUDIO_TARGETS + ANIMATION_TARGETS + FRAME_TARGETS for k in VIDEO_SOURCES},
    **{k: AUDIO_TARGETS for k in AUDIO_SOURCES},
    Kind.GIF: VIDEO_TARGETS,  # ffmpeg 5.1 cannot decode animated WebP
}


class _Steady:
    """Passes on only increasing fractions, so that several ffmpeg runs make one bar."""

    def __init__(self, report: ProgressFn) -> None:
        self.report = report
        self.last = 0.0

    def __call__(self, fraction: float) -> None:
        if fraction > self.last:
            self.last = fraction
            self.report(fraction)


class MediaConverter:
    """Converts and compresses audio and video with ffmpeg (see the module docstring).

    Each ffmpeg run may take `base_timeout` + `timeout_factor` x the work the file needs
    (proportional to its duration, frame size and frame rate); then it is killed. ffmpeg
    reports progress every `progress_period` seconds.
    """

    name = "media"

    def __init__(
        self,
        *,
        base_timeout: float = BASE_TIMEOUT,
        timeout_factor: float = 1.0,
        progress_period: float = PROGRESS_PERIOD,
    ) -> None:
        self.base_timeout = base_timeout
        self.timeout_factor = timeout_factor
        self.progress_period = progress_period

    def queue(self, source: Kind, target: OutputFormat) -> Queue:
        return Queue.MEDIA

    def convert(
        self,
        src: Path,
        source: SourceInfo,
        spec: FileSpec,
        workdir: Path,
        limits: Limits,
        progress: ProgressFn = no_progress,
    ) -> ConvertedFile:
        kind = Kind(source.kind)
        target = _target_of(kind, spec)
        if spec.job_type is JobType.COMPRESS:
            _check_compress(target, spec)
        media = open_source(src, source, limits, base_timeout=self.base_timeout,
                            timeout_factor=self.timeout_factor)
        task = Task(
            src=src,
            spec=spec,
            target=target,
            info=media.info,
            duration=media.duration,
            out=workdir / f"output.{extension_for(target)}",
            report=_Steady(progress),
            base_timeout=self.base_timeout,
            timeout_factor=self.timeout_factor,
            progress_period=self.progress_period,
            max_seconds=limits.max_media_seconds,
        )
        if fits_already(task):
            # Handed back as it is: first read its packets, in case the header lies.
            reading = self.timeout_factor * source.size / READ_BYTES_PER_SECOND
            task.check_length(measure_duration(src, timeout=self.base_timeout + reading,
                                               cap=task.length_cap) or 0.0)  # fmt: skip
            result = keep_original(task, "The original already fits the target size; it was "
                                   "kept.")  # fmt: skip
        elif target in AUDIO_TARGETS:
            result = to_audio(task)
        elif target in FRAME_TARGETS:
            result = to_frame(task, limits)
        elif target in ANIMATION_TARGETS:
            result = to_animation(task)
        else:
            result = to_video(task, kind)
        task.report(1.0)
        return result


def register(registry: Registry) -> None:
    converter = MediaConverter()
    for kind, targets in TARGETS.items():
        registry.register(converter, (kind,), targets)


def _target_of(kind: Kind, spec: FileSpec) -> OutputFormat:
    target, allowed = target_of(spec), TARGETS.get(kind, ())
    if target not in allowed:
        raise UnsupportedConversionError(
            f"{kind.label} converts to {', '.join(allowed) or 'nothing here'}, not {target}."
        )
    return target


def _check_compress(target: OutputFormat, spec: FileSpec) -> None:
    if spec.resize is not ResizePreset.ORIGINAL:
        raise InvalidFieldError("resize", "compress keeps the video size; resize with convert.")
    if spec.mode is CompressMode.TARGET_SIZE and not (spec.target_bytes or 0) > 0:
        raise InvalidFieldError(
            "targetBytes", "a positive number of bytes is required when mode is 'target-size'."
        )
    if spec.lossless and target in VIDEO_TARGETS:
        raise UnsupportedConversionError(
            "Lossless compression is not offered for video: H.264 and VP9 are encoded lossy "
            "here. Use mode 'quality' with a high compression value, or 'target-size'."
        )
