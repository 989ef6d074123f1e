"""A media file opened: probed, its limits checked, and one frame taken out.

`open_source` probes the file (ffprobe) and checks CONVERTLY_MAX_MEDIA_SECONDS and the pixel
limit before anything decodes: the media converter and the tools open files through it.
`extract_frame` writes one video frame as a PNG for the image pipeline (poster frames,
thumbnails of video).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from convertly.converters.base import Limits, ProgressFn, no_progress
from convertly.converters.image.declared import check_declared
from convertly.converters.media.encryption import check_not_encrypted
from convertly.converters.media.ffmpeg import (
    MediaInfo,
    Stream,
    filter_graph,
    input_url,
    measure_duration,
    probe,
)
from convertly.converters.media.task import BASE_TIMEOUT, LENGTH_MARGIN, Task
from convertly.converters.pixels import check_pixels
from convertly.errors import ConversionError, MediaTooLongError, UnsupportedConversionError
from convertly.models import FileSpec, OutputFormat, SourceInfo
from convertly.sniff import Kind

READ_BYTES_PER_SECOND = 20_000_000  # a slow disk, for timing out a pass that only reads
FRAME_AT = 0.1  # of the duration, when no time is given: past fades from black
SHORT_CLIP_SECONDS = 2.0  # shorter clips give their first frame when no time is given


@dataclass(frozen=True)
class MediaSource:
    """A probed audio or video file whose limits were checked."""

    src: Path
    kind: Kind
    info: MediaInfo
    duration: float  # seconds (0 when unknown)

    def video(self, what: str) -> Stream:
        """The video stream; `what` ("A poster frame") needs one, and says so if absent."""
        if (video := self.info.video) is None:
            raise UnsupportedConversionError(f"{what} needs a video track; this file has none.")
        return video

    def task(self, target: OutputFormat, out: Path, seconds: float, progress: ProgressFn,
             limits: Limits) -> Task:  # fmt: skip
        """A Task for ffmpeg runs that write `seconds` of output (0: a still) to `out`."""
        spec = FileSpec(index=0, filename=self.src.name, format=target)
        return Task(src=self.src, spec=spec, target=target, info=self.info, duration=seconds,
                    out=out, report=progress, max_seconds=limits.max_media_seconds)  # fmt: skip


def open_source(src: Path, source: SourceInfo, limits: Limits, *,
                base_timeout: float = BASE_TIMEOUT, timeout_factor: float = 1.0) -> MediaSource:
    """Probe `src` and check the limits (MEDIA_TOO_LONG, pixels) before anything decodes:
    encrypted media is refused, an animation's declared size is checked before ffprobe
    reads it, and a file that announces no duration has its packets read (up to the limit)
    within `base_timeout` + `timeout_factor` x the time a slow disk takes to read it."""
    kind = Kind(source.kind)
    check_not_encrypted(src, kind)
    if kind.family == "image":  # an animation: a flood is refused before ffprobe
        check_declared(src, kind, limits)
    info = probe(src)
    check_limits(info, info.duration or 0.0, limits)
    duration = info.duration
    if duration is None:
        # Streamed WebM (MediaRecorder) announces no duration: read every packet.
        reading = timeout_factor * source.size / READ_BYTES_PER_SECOND
        duration = measure_duration(src, timeout=base_timeout + reading,
                                    cap=limits.max_media_seconds + LENGTH_MARGIN)
        check_limits(info, duration or 0.0, limits)
    return MediaSource(src, kind, info, duration or 0.0)


def check_limits(info: MediaInfo, duration: float, limits: Limits) -> None:
    if duration > limits.max_media_seconds:
        raise MediaTooLongError(
            f"The file lasts {duration:,.0f} s, over this server's limit of "
            f"{limits.max_media_seconds:,} s (CONVERTLY_MAX_MEDIA_SECONDS). Send a shorter "
            "file or ask the operator to raise the limit.",
            detail={"seconds": round(duration, 3), "maxSeconds": limits.max_media_seconds},
        )
    if info.video is not None:
        check_pixels(limits, [(info.video.width, info.video.height)], subject="video")



def extract_frame(media: MediaSource, at: float | None, workdir: Path, limits: Limits,
                  filters: tuple[str, ...] = ()) -> tuple[Path, float]:  # fmt: skip
    """The frame at `at` seconds (clamped to the last frame; None: a tenth into the clip,
    the first frame of a short one) as `frame.png` in `workdir`, through `filters`; and the
    time it was taken at."""
    video = media.video("A frame")
    last = max(media.duration - 1 / (video.fps or 25), 0.0)
    if at is None:
        at = media.duration * FRAME_AT if media.duration >= SHORT_CLIP_SECONDS else 0.0
    at = min(at, last)
    png = workdir / "frame.png"
    task = media.task(OutputFormat.PNG, png, 0.0, no_progress, limits)
    graph = filter_graph(video, filters, flatten=False)
    for seek in dict.fromkeys((at, 0.0)):  # a seek past the last keyframe may give nothing
        task.run(["-ss", f"{seek:.3f}", "-i", input_url(media.src), "-filter_complex", graph,
                  "-map", "[v]", "-frames:v", "1",
                  "-pix_fmt", "rgba" if video.has_alpha else "rgb24",
                  "-f", "image2", str(png)], 0.0)  # fmt: skip
        if png.exists() and png.stat().st_size > 0:
            return png, seek
    raise ConversionError("No video frame could be decoded from this file.")
