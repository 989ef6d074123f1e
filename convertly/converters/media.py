"""Audio and video with ffmpeg: mp4 mov webm, animated gif and mp3 wav ogg flac m4a in.

Video becomes mp4 or mov (H.264 + AAC), webm (VP9 + Opus), audio (mp3, wav, ogg Vorbis, m4a
AAC, flac), an animated gif or webp, or one still frame (jpg png avif tiff heif, encoded by
the image converter). Audio becomes audio; GIFs become video. Every file is probed first
(ffprobe) so that the limits are checked before anything is decoded and progress has a
duration. Compress never hands back a file larger than the original.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from convertly.converters.audio import to_audio
from convertly.converters.base import Limits, ProgressFn, no_progress
from convertly.converters.ffmpeg import (
    PROGRESS_PERIOD,
    Encoding,
    MediaInfo,
    Stream,
    filter_graph,
    geometry,
    input_url,
    measure_duration,
    probe,
    seconds_label,
    shrink,
    video_audio_encoding,
    video_encoding,
)
from convertly.converters.image import ImageConverter
from convertly.converters.media_compress import (
    fits_already,
    keep_original,
    keep_smaller,
    video_to_size,
)
from convertly.converters.media_task import (
    ANIMATION_TARGETS,
    AUDIO_TARGETS,
    BASE_TIMEOUT,
    FRAME_TARGETS,
    VIDEO_TARGETS,
    WORK_FACTOR,
    Task,
)
from convertly.converters.registry import Registry
from convertly.converters.resize import ResizePlan, plan_resize
from convertly.errors import (
    ConversionError,
    CorruptFileError,
    ImageTooLargeError,
    InvalidFieldError,
    MediaTooLongError,
    UnsupportedConversionError,
)
from convertly.models import (
    DEFAULT_COMPRESSION,
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

F = OutputFormat
VIDEO_SOURCES = (Kind.MP4, Kind.MOV, Kind.WEBM)
AUDIO_SOURCES = (Kind.MP3, Kind.WAV, Kind.OGG, Kind.FLAC, Kind.M4A)
TARGETS: dict[Kind, tuple[OutputFormat, ...]] = {
    **{k: VIDEO_TARGETS + AUDIO_TARGETS + ANIMATION_TARGETS + FRAME_TARGETS for k in VIDEO_SOURCES},
    **{k: AUDIO_TARGETS for k in AUDIO_SOURCES},
    Kind.GIF: VIDEO_TARGETS,  # ffmpeg 5.1 cannot decode animated WebP
}

ANIMATION_MAX_WIDTH = {F.GIF: 480, F.WEBP: 640}  # unless the preset gives a size in pixels
ANIMATION_MAX_FPS = {F.GIF: 12, F.WEBP: 15}
_EXPLICIT_PRESETS = frozenset({ResizePreset.WIDTH, ResizePreset.HEIGHT, ResizePreset.SQUARE})
GIF_PALETTE_USE = "paletteuse=dither=bayer:bayer_scale=5:diff_mode=rectangle"
GIF_SOURCE_MAX_FPS = 50  # GIF delays are in centiseconds
STILL_GIF_SECONDS = 1.0
POSTER_AT = 0.1  # of the duration: past fades from black, early enough to be representative
SHORT_CLIP_SECONDS = 2.0  # shorter clips give their first frame
READ_BYTES_PER_SECOND = 20_000_000  # a slow disk, for timing out a pass that only reads
_VIDEO_CODEC = {F.MP4: "h264", F.MOV: "h264", F.WEBM: "vp9"}
_COPYABLE_AUDIO = {F.MP4: {"aac"}, F.MOV: {"aac"}, F.WEBM: {"opus", "vorbis"}}


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
        info = probe(src)
        _check_limits(info, info.duration or 0.0, limits)
        duration = info.duration
        if duration is None:
            # Streamed WebM (MediaRecorder) announces no duration: read every packet.
            reading = self.timeout_factor * source.size / READ_BYTES_PER_SECOND
            duration = measure_duration(src, timeout=self.base_timeout + reading)
            _check_limits(info, duration or 0.0, limits)
        task = Task(
            src=src,
            spec=spec,
            target=target,
            info=info,
            duration=duration or 0.0,
            out=workdir / f"output.{extension_for(target)}",
            report=_Steady(progress),
            base_timeout=self.base_timeout,
            timeout_factor=self.timeout_factor,
            progress_period=self.progress_period,
        )
        if fits_already(task):
            result = keep_original(task, "The original already fits the target size; it was "
                                   "kept.")  # fmt: skip
        elif target in AUDIO_TARGETS:
            result = to_audio(task)
        elif target in FRAME_TARGETS:
            result = _to_frame(task, limits)
        elif target in ANIMATION_TARGETS:
            result = _to_animation(task)
        else:
            result = _to_video(task, kind)
        task.report(1.0)
        return result


def register(registry: Registry) -> None:
    converter = MediaConverter()
    for kind, targets in TARGETS.items():
        registry.register(converter, (kind,), targets)


def _target_of(kind: Kind, spec: FileSpec) -> OutputFormat:
    allowed = TARGETS.get(kind, ())
    if spec.format is None or spec.format not in allowed:
        raise UnsupportedConversionError(
            f"{kind.label} converts to {', '.join(allowed) or 'nothing here'}, "
            f"not {spec.format or 'nothing'}."
        )
    return spec.format


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


def _check_limits(info: MediaInfo, duration: float, limits: Limits) -> None:
    if duration > limits.max_media_seconds:
        raise MediaTooLongError(
            f"The file lasts {duration:,.0f} s, over this server's limit of "
            f"{limits.max_media_seconds:,} s (CONVERTLY_MAX_MEDIA_SECONDS). Send a shorter "
            "file or ask the operator to raise the limit.",
            detail={"seconds": round(duration, 3), "maxSeconds": limits.max_media_seconds},
        )
    video = info.video
    if video is not None and video.width * video.height > limits.max_pixels:
        pixels = video.width * video.height
        raise ImageTooLargeError(
            f"The video frames are {video.width}x{video.height} = {pixels:,} pixels, over "
            f"this server's limit of {limits.max_pixels:,} (CONVERTLY_MAX_PIXELS). Send a "
            "smaller video or ask the operator to raise the limit.",
            detail={"pixels": pixels, "maxPixels": limits.max_pixels},
        )


def _need_video(task: Task) -> Stream:
    if task.info.video is None:
        raise ConversionError(
            f"This file has no video track, so it cannot become {task.target.value}; "
            "convert it to an audio format (mp3, m4a, ogg, flac or wav) instead."
        )
    video = task.info.video
    if video.width < 1 or video.height < 1:
        raise CorruptFileError(
            f"The video track announces a frame size of {video.width}x{video.height}; the file "
            "is damaged or its codec cannot be read here."
        )
    return video


def _plan(video: Stream, spec: FileSpec) -> ResizePlan:
    return plan_resize(*video.display_size, spec.resize, spec.resize_width, spec.resize_height)


# -- video -> video --------------------------------------------------------------------------


def _to_video(task: Task, kind: Kind) -> ConvertedFile:
    video = _need_video(task)
    audio = task.info.audio
    frames = geometry(video, _plan(video, task.spec), even=True)
    if _can_copy(task, video, frames.filters, (frames.width, frames.height)):
        return _copy_video(task, video, audio)
    filters = list(frames.filters)
    if kind is Kind.GIF:
        # The fps filter keeps the last frame's delay, which the muxers would drop.
        rate = min(video.frame_rate or 25, GIF_SOURCE_MAX_FPS)
        timing = [f"fps={rate:g}"]
        if task.duration < 0.05:
            timing.append(f"tpad=stop_mode=clone:stop_duration={STILL_GIF_SECONDS:g}")
        filters = timing + filters
    graph = filter_graph(video, filters, flatten=video.has_alpha, finish=["format=yuv420p"])

    def encode(video_kbps: int = 0, audio_kbps: int = 0) -> Encoding:
        compression = task.spec.compression
        picture = video_encoding(task.target.value, compression, video_kbps)
        args = ["-i", input_url(task.src), "-filter_complex", graph, "-map", "[v]",
                *picture.args]  # fmt: skip
        notes = [picture.note]
        if audio is not None:
            sound = video_audio_encoding(task.target.value, audio, compression, audio_kbps)
            args += ["-map", f"0:{audio.index}", *sound.args]
            notes.append(sound.note)
        return Encoding((*args, *task.output()), ", ".join(notes) + ".", picture.quality)

    if task.compress and task.spec.mode is CompressMode.TARGET_SIZE:
        done = video_to_size(task, audio, encode)
    else:
        done = encode()
        task.run(list(done.args), WORK_FACTOR[task.target.value])
    notes = [done.note, *task.truncation(video, audio)]
    if task.compress:
        return keep_smaller(task, done, notes, (frames.width, frames.height))
    return task.result(notes, done.quality, (frames.width, frames.height))


def _can_copy(
    task: Task, video: Stream, filters: tuple[str, ...], size: tuple[int, int]
) -> bool:
    """A convert that only changes the container keeps the streams as they are."""
    return (
        not task.compress
        and task.spec.compression == DEFAULT_COMPRESSION
        and task.spec.resize is ResizePreset.ORIGINAL
        and video.codec == _VIDEO_CODEC[task.target]
        and video.pix_fmt == "yuv420p"
        and not filters
        and size == video.oriented_size
        # ffmpeg 5.1 writes no rotation into Matroska: webm must get upright frames.
        and (video.rotation == 0 or task.target is not F.WEBM)
    )


def _copy_video(task: Task, video: Stream, audio: Stream | None) -> ConvertedFile:
    args = ["-i", input_url(task.src), "-map", f"0:{video.index}", "-c:v", "copy"]
    notes = [f"The {video.codec.upper()} video was copied as it is (only the container changed)"]
    if audio is not None:
        args += ["-map", f"0:{audio.index}"]
        if audio.codec in _COPYABLE_AUDIO[task.target]:
            args += ["-c:a", "copy"]
        else:
            sound = video_audio_encoding(task.target.value, audio, task.spec.compression)
            args += sound.args
            notes.append(f"the audio was encoded to {sound.note}")
    task.run(args + task.output(), WORK_FACTOR["copy"])
    return task.result(["; ".join(notes) + "."], None, video.display_size)


# -- video -> animation ----------------------------------------------------------------------


def _to_animation(task: Task) -> ConvertedFile:
    video = _need_video(task)
    target = task.target
    plan = _plan(video, task.spec)
    notes: list[str] = []
    max_width = ANIMATION_MAX_WIDTH[target]
    if plan.width > max_width and task.spec.resize not in _EXPLICIT_PRESETS:
        plan = shrink(plan, max_width / plan.width)
        notes.append(f"Animated {target.value} is limited to {max_width} px wide.")
    frames = geometry(video, plan, even=False)
    max_fps = ANIMATION_MAX_FPS[target]
    if video.fps and video.fps > max_fps:
        notes.append(f"Frames were reduced to {max_fps} per second.")
    filters = [f"fps={min(video.fps or max_fps, max_fps):g}", *frames.filters]
    source = ["-i", input_url(task.src)]
    work = WORK_FACTOR[target.value]
    quality: int | None = None
    if target is F.GIF:
        # Two passes, so that no frame waits in memory for the palette of the whole clip.
        palette = task.workdir / "palette.png"
        first = filter_graph(video, filters, flatten=video.has_alpha, finish=["palettegen"])
        task.run([*source, "-filter_complex", first, "-map", "[v]", "-frames:v", "1",
                  "-f", "image2", str(palette)], work / 2, (0.0, 0.5))  # fmt: skip
        graph = filter_graph(video, filters, flatten=video.has_alpha, out="x")
        graph += f";[x][1:v]{GIF_PALETTE_USE}[v]"
        task.run([*source, "-i", str(palette), "-filter_complex", graph, "-map", "[v]",
                  *task.output()], work / 2, (0.5, 1.0))  # fmt: skip
        palette.unlink()
    else:
        quality = task.spec.compression
        graph = filter_graph(video, filters, flatten=False)
        task.run([*source, "-filter_complex", graph, "-map", "[v]", "-c:v", "libwebp_anim",
                  "-lossless", "0", "-quality", str(quality), *task.output()], work)  # fmt: skip
    return task.result(notes, quality, (frames.width, frames.height))


# -- video -> still frame --------------------------------------------------------------------


def _to_frame(task: Task, limits: Limits) -> ConvertedFile:
    """One representative frame as a PNG, then the image converter (resize, quality)."""
    video = _need_video(task)
    at = task.duration * POSTER_AT if task.duration >= SHORT_CLIP_SECONDS else 0.0
    frame = task.workdir / "frame.png"
    square = geometry(video, _plan(video, replace(task.spec, resize=ResizePreset.ORIGINAL)),
                      even=False)  # fmt: skip
    graph = filter_graph(video, square.filters, flatten=False)
    for seek in dict.fromkeys((at, 0.0)):  # a seek past the last keyframe may give nothing
        task.run(["-ss", f"{seek:.3f}", "-i", input_url(task.src), "-filter_complex", graph,
                  "-map", "[v]", "-frames:v", "1",
                  "-pix_fmt", "rgba" if video.has_alpha else "rgb24",
                  "-f", "image2", str(frame)], WORK_FACTOR["frame"],
                 report=no_progress)  # fmt: skip
        if frame.exists() and frame.stat().st_size > 0:
            at = seek
            break
    else:
        raise ConversionError("No video frame could be decoded from this file.")
    task.report(0.5)
    still = SourceInfo(kind=Kind.PNG.value, family="image", mime_type="image/png",
                       size=frame.stat().st_size)  # fmt: skip
    result = ImageConverter().convert(frame, still, task.spec, task.workdir, limits)
    frame.unlink()
    return replace(result, notes=(f"The frame at {seconds_label(at)} was used.", *result.notes))
