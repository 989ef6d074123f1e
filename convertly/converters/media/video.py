"""Video out of video and GIFs: a video file, an animation or one still frame.

Video becomes mp4 or mov (H.264 + AAC) or webm (VP9 + Opus), an animated gif or webp, or one
still frame (jpg png avif tiff heif); GIFs become video. A convert that only changes the
container copies the streams as they are. Animations are limited in frame rate, and in width
unless the preset gives a size in pixels; a GIF gets its own palette in a first pass. A still
frame is taken a tenth of the way into the clip (the first frame of a short one) and encoded
by the image converter.
"""

from __future__ import annotations

from dataclasses import replace

from convertly.converters.base import Limits, no_progress
from convertly.converters.image import ImageConverter
from convertly.converters.media.compress import keep_smaller, video_to_size
from convertly.converters.media.ffmpeg import (
    Encoding,
    Stream,
    filter_graph,
    geometry,
    input_url,
    seconds_label,
    shrink,
    video_audio_encoding,
    video_encoding,
)
from convertly.converters.media.task import WORK_FACTOR, Task
from convertly.converters.resize import ResizePlan, plan_resize
from convertly.errors import ConversionError, CorruptFileError
from convertly.models import (
    DEFAULT_COMPRESSION,
    CompressMode,
    ConvertedFile,
    FileSpec,
    OutputFormat,
    ResizePreset,
    SourceInfo,
)
from convertly.sniff import Kind

F = OutputFormat
ANIMATION_MAX_WIDTH = {F.GIF: 480, F.WEBP: 640}  # unless the preset gives a size in pixels
ANIMATION_MAX_FPS = {F.GIF: 12, F.WEBP: 15}
_EXPLICIT_PRESETS = frozenset({ResizePreset.WIDTH, ResizePreset.HEIGHT, ResizePreset.SQUARE})
GIF_PALETTE_USE = "paletteuse=dither=bayer:bayer_scale=5:diff_mode=rectangle"
GIF_SOURCE_MAX_FPS = 50  # GIF delays are in centiseconds
STILL_GIF_SECONDS = 1.0
POSTER_AT = 0.1  # of the duration: past fades from black, early enough to be representative
SHORT_CLIP_SECONDS = 2.0  # shorter clips give their first frame
_VIDEO_CODEC = {F.MP4: "h264", F.MOV: "h264", F.WEBM: "vp9"}
_COPYABLE_AUDIO = {F.MP4: {"aac"}, F.MOV: {"aac"}, F.WEBM: {"opus", "vorbis"}}


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


def to_video(task: Task, kind: Kind) -> ConvertedFile:
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


def to_animation(task: Task) -> ConvertedFile:
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
        task.run([*task.source_cap(), *source, "-filter_complex", first, "-map", "[v]",
                  "-frames:v", "1", "-f", "image2", str(palette)], work / 2,
                 (0.0, 0.5))  # fmt: skip
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


def to_frame(task: Task, limits: Limits) -> ConvertedFile:
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
