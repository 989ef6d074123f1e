"""Audio and video with ffmpeg: mp4 mov webm, animated gif and mp3 wav ogg flac m4a in.

Video becomes mp4 or mov (H.264 + AAC), webm (VP9 + Opus), audio (mp3, wav, ogg Vorbis, m4a
AAC, flac), an animated gif or webp, or one still frame (jpg png avif tiff heif, encoded by
the image converter). Audio becomes audio. GIFs become video. Every file is probed first
(ffprobe) so that limits are checked before any decoding and progress has a duration.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from convertly.converters.base import Limits, ProgressFn, no_progress
from convertly.converters.ffmpeg import (
    PROGRESS_PERIOD,
    MediaInfo,
    ProgressReader,
    Stream,
    input_url,
    measure_duration,
    probe,
    run_ffmpeg,
    seconds_label,
)
from convertly.converters.image import ImageConverter
from convertly.converters.registry import Registry
from convertly.converters.resize import ResizePlan, plan_resize
from convertly.errors import (
    ConversionError,
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
    mime_for,
)
from convertly.sniff import Kind

F = OutputFormat
VIDEO_SOURCES = (Kind.MP4, Kind.MOV, Kind.WEBM)
AUDIO_SOURCES = (Kind.MP3, Kind.WAV, Kind.OGG, Kind.FLAC, Kind.M4A)
VIDEO_TARGETS = (F.MP4, F.WEBM, F.MOV)
AUDIO_TARGETS = (F.MP3, F.WAV, F.OGG, F.M4A, F.FLAC)
ANIMATION_TARGETS = (F.GIF, F.WEBP)
FRAME_TARGETS = (F.JPG, F.PNG, F.AVIF, F.TIFF, F.HEIF)
TARGETS: dict[Kind, tuple[OutputFormat, ...]] = {
    **{k: VIDEO_TARGETS + AUDIO_TARGETS + ANIMATION_TARGETS + FRAME_TARGETS for k in VIDEO_SOURCES},
    **{k: AUDIO_TARGETS for k in AUDIO_SOURCES},
    Kind.GIF: VIDEO_TARGETS,  # ffmpeg 5.1 cannot decode animated WebP
}

# Measured on 2 cores, 30 s 1080p30 H.264 -> 720p: x264 veryfast 13.7 s (ultrafast and
# superfast are no faster there, decoding dominates, and 4x larger; faster 18.8 s; medium
# 50 s); VP9 realtime cpu-used 8 with row-mt 17.3 s (cpu-used 7: 24 s; good/5: 73 s).
X264_PRESET = "veryfast"
VP9_SPEED = ("-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1")
# compression (1-100, higher = better) -> encoder setting, interpolated between the points.
H264_CRF = ((1, 45), (82, 23), (100, 18))
VP9_CRF = ((1, 60), (82, 33), (100, 15))
AAC_KBPS = ((1, 48), (82, 160), (100, 256))  # for stereo; scaled by the channel count
OPUS_KBPS = ((1, 24), (82, 128), (100, 192))
MP3_VBR = ((1, 9), (82, 2), (100, 0))  # LAME -V: 0 best, 9 smallest
VORBIS_QUALITY = ((1, 0), (82, 6), (100, 10))
FLAC_LEVEL = 8
FLAC_COMPRESS_LEVEL = 12  # slowest, smallest; audio encodes fast anyway
# Lowest bitrates (kb/s) target-size goes to: LAME's MPEG-1 floor at 32-48 kHz, libvorbis'
# floor for 44.1 kHz stereo; below ~40 kb/s of video H.264 and VP9 fall apart.
MIN_AUDIO_KBPS = {F.MP3: 32, F.OGG: 48, F.M4A: 24, F.MP4: 24, F.MOV: 24, F.WEBM: 16}
MAX_AUDIO_KBPS = {F.MP3: 320, F.OGG: 500, F.M4A: 512}
MIN_VIDEO_KBPS = 40
SIZE_ATTEMPTS = 3
SIZE_MARGIN = 0.96  # of the target, left for container overhead and rate-control slack

ANIMATION_MAX_WIDTH = {F.GIF: 480, F.WEBP: 640}
ANIMATION_MAX_FPS = {F.GIF: 12, F.WEBP: 15}
_EXPLICIT_PRESETS = frozenset({ResizePreset.WIDTH, ResizePreset.HEIGHT, ResizePreset.SQUARE})
GIF_SOURCE_MAX_FPS = 50  # GIF delays are in centiseconds
STILL_GIF_SECONDS = 1.0
POSTER_AT = 0.1  # of the duration: past fades from black, early enough to be representative
SHORT_CLIP_SECONDS = 2.0  # shorter clips give their first frame

# Timeouts: BASE + FACTOR x duration x (source pixels / 1080p, at least 1) x (fps / 30, at
# least 1). The factors are ~3x the seconds of work per second of media measured for a
# 1080p30 source on 2 cores (x264 0.46, VP9 0.58, audio 0.01, GIF two passes ~0.5).
BASE_TIMEOUT = 60.0
_FULL_HD = 1920 * 1080
WORK_FACTOR = {"h264": 1.5, "vp9": 2.0, "copy": 0.2, "gif": 2.0, "webp": 3.0, "frame": 0.0}
AUDIO_WORK_FACTOR = 0.2

_MUXERS = {
    F.MP4: "mp4", F.MOV: "mov", F.WEBM: "webm", F.MP3: "mp3", F.WAV: "wav", F.OGG: "ogg",
    F.M4A: "ipod", F.FLAC: "flac", F.GIF: "gif", F.WEBP: "webp",
}  # fmt: skip
_VIDEO_CODEC = {F.MP4: "h264", F.MOV: "h264", F.WEBM: "vp9"}
_COPYABLE_AUDIO = {F.MP4: {"aac"}, F.MOV: {"aac"}, F.WEBM: {"opus", "vorbis"}}
_LOSSLESS_AUDIO_CODECS = frozenset({"flac", "alac", "wavpack", "ape", "tta", "truehd"})
_LOSSLESS_TARGETS = frozenset({F.WAV, F.FLAC})
_STRIP_ARGS = (
    "-map_metadata", "-1", "-map_chapters", "-1",
    "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
)  # fmt: skip


@dataclass(frozen=True)
class _Task:
    """One conversion: what every step needs to know."""

    src: Path
    workdir: Path
    spec: FileSpec
    target: OutputFormat
    info: MediaInfo
    duration: float  # seconds; 0 when unknown (a still image)
    out: Path
    base_timeout: float
    timeout_factor: float
    progress_period: float = PROGRESS_PERIOD

    @property
    def compress(self) -> bool:
        return self.spec.job_type is JobType.COMPRESS

    def timeout(self, work: float) -> float:
        """`work`: seconds of work per second of 1080p30 media (see WORK_FACTOR)."""
        scale = 1.0
        video = self.info.video
        if video is not None:
            scale = max(1.0, video.width * video.height / _FULL_HD) * max(
                1.0, (video.fps or 30) / 30
            )
        return self.base_timeout + self.timeout_factor * work * self.duration * scale


@dataclass(frozen=True)
class _Geometry:
    """Filters that give the frames their output size, and that size."""

    filters: tuple[str, ...]
    width: int
    height: int


@dataclass(frozen=True)
class _Encoded:
    quality: int | None
    notes: tuple[str, ...] = ()
    kept_source: bool = False  # compress handed back the source file


_ArgsFor = Callable[[int], tuple[list[str], _Encoded]]  # bitrate in kb/s -> ffmpeg arguments


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
    (proportional to its duration and frame size), then it is killed. Progress is read
    from ffmpeg every `progress_period` seconds.
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
        duration = info.duration
        if duration is None:
            duration = measure_duration(src, timeout=self.base_timeout)
        _check_limits(info, duration or 0.0, limits)
        task = _Task(
            src=src,
            workdir=workdir,
            spec=spec,
            target=target,
            info=info,
            duration=duration or 0.0,
            out=workdir / f"output.{extension_for(target)}",
            base_timeout=self.base_timeout,
            timeout_factor=self.timeout_factor,
            progress_period=self.progress_period,
        )
        report = _Steady(progress)
        if _fits_already(task):
            shutil.copyfile(src, task.out)
            size = info.video.display_size if info.video and target in VIDEO_TARGETS else None
            encoded = _Encoded(None, ("The original already fits the target size; it was kept.",))
            result = _result(task, encoded, size)
        elif target in AUDIO_TARGETS:
            result = _to_audio(task, report)
        elif target in FRAME_TARGETS:
            result = _to_frame(task, limits, report)
        elif target in ANIMATION_TARGETS:
            result = _to_animation(task, report)
        else:
            result = _to_video(task, kind, report)
        report(1.0)
        return result


def register(registry: Registry) -> None:
    converter = MediaConverter()
    for kind, targets in TARGETS.items():
        registry.register(converter, (kind,), targets)


def _fits_already(task: _Task) -> bool:
    spec = task.spec
    return (
        task.compress
        and spec.mode is CompressMode.TARGET_SIZE
        and not spec.strip_metadata
        and task.src.stat().st_size <= (spec.target_bytes or 0)
    )


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


def _interpolate(compression: int, points: tuple[tuple[int, int], ...]) -> int:
    value = max(points[0][0], min(points[-1][0], compression))
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 <= value <= x1:
            return round(y0 + (y1 - y0) * (value - x0) / (x1 - x0))
    raise ValueError(f"{compression} is outside {points}")


def _need_video(task: _Task) -> Stream:
    if task.info.video is None:
        raise ConversionError(
            f"This file has no video track, so it cannot become {task.target.value}; "
            "convert it to an audio format (mp3, m4a, ogg, flac or wav) instead."
        )
    return task.info.video


def _run(task: _Task, args: list[str], report: ProgressFn, work: float,
         span: tuple[float, float] = (0.0, 1.0)) -> None:  # fmt: skip
    reader = ProgressReader(task.duration or None, report, *span)
    run_ffmpeg(args, timeout=task.timeout(work), reader=reader, workdir=task.workdir,
               progress_period=task.progress_period)  # fmt: skip


def _result(task: _Task, encoded: _Encoded, size: tuple[int, int] | None) -> ConvertedFile:
    return ConvertedFile(
        path=str(task.out),
        format=task.target.value,
        mime_type=mime_for(task.target.value),
        applied_quality=encoded.quality,
        width=size[0] if size else None,
        height=size[1] if size else None,
        notes=encoded.notes,
    )


# -- geometry --------------------------------------------------------------------------------


def _even_down(value: int) -> int:
    return max(2, value - value % 2)


def _geometry(video: Stream, plan: ResizePlan, *, even: bool) -> _Geometry:
    """Scale, crop and pad filters turning the (autorotated) frames into `plan`'s output.

    `even` keeps both sides even, as 4:2:0 video needs: a scaled side is rounded to even,
    an odd side that is not scaled loses its last pixel.
    """
    oriented = video.oriented_size
    scale = (plan.scaled_width, plan.scaled_height) != oriented
    if scale:
        scaled = (plan.scaled_width, plan.scaled_height)
        if even:
            scaled = (_even_down(scaled[0]), _even_down(scaled[1]))
    else:
        scaled = oriented
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
    return _Geometry(tuple(filters), width, height)


def _plan(video: Stream, spec: FileSpec) -> ResizePlan:
    return plan_resize(*video.display_size, spec.resize, spec.resize_width, spec.resize_height)


def _graph(
    video: Stream,
    filters: list[str] | tuple[str, ...],
    *,
    flatten: bool,
    finish: tuple[str, ...] = (),
    out: str = "v",
) -> str:
    """A -filter_complex graph from the video stream through `filters`, a white background
    when `flatten` (4:2:0 video and GIF hold no partial transparency), then `finish`."""
    chain = f"[0:{video.index}]{','.join(filters) or 'null'}"
    if flatten:
        # After the timing filters: overlay forgets how long the last frame lasts.
        chain += (
            ",format=rgba,split[fg][bg];[bg]lutrgb=r=255:g=255:b=255:a=255[white];"
            "[white][fg]overlay=format=auto"
        )
    return f"{chain}{''.join(',' + f for f in finish)}[{out}]"


# -- video -> video --------------------------------------------------------------------------


def _to_video(task: _Task, kind: Kind, report: ProgressFn) -> ConvertedFile:
    video = _need_video(task)
    audio = task.info.audio
    spec = task.spec
    geometry = _geometry(video, _plan(video, spec), even=True)
    if _can_copy(task, video, geometry):
        return _copy_video(task, video, audio, report)
    filters = list(geometry.filters)
    if kind is Kind.GIF:
        if task.duration < 0.05:
            filters.insert(0, f"tpad=stop_mode=clone:stop_duration={STILL_GIF_SECONDS}")
        # The fps filter keeps the last frame's delay, which the muxers would drop.
        rate = min(video.frame_rate or 25, GIF_SOURCE_MAX_FPS)
        filters.insert(0, f"fps={rate:g}")
    graph = _graph(video, filters, flatten=video.has_alpha, finish=("format=yuv420p",))
    size = (geometry.width, geometry.height)
    if task.compress and spec.mode is CompressMode.TARGET_SIZE:
        encoded = _video_to_size(task, graph, audio, report)
    else:
        args, encoded = _video_args(task, graph, audio, crf=True, video_kbps=0, audio_kbps=0)
        _run(task, args, report, WORK_FACTOR[_VIDEO_CODEC[task.target]])
    if task.compress:
        encoded = _keep_smaller(task, encoded, video, audio, report)
        if encoded.kept_source:
            size = video.display_size
    return _result(task, encoded, size)


def _video_args(
    task: _Task,
    graph: str,
    audio: Stream | None,
    *,
    crf: bool,
    video_kbps: int,
    audio_kbps: int,
) -> tuple[list[str], _Encoded]:
    """ffmpeg arguments for a video target: constant quality from compression (`crf`), or
    average bitrates in kb/s (target size)."""
    compression = task.spec.compression
    args = ["-i", input_url(task.src), "-filter_complex", graph, "-map", "[v]"]
    if task.target is F.WEBM:
        value = _interpolate(compression, VP9_CRF)
        args += ["-c:v", "libvpx-vp9", *VP9_SPEED]
        if crf:
            args += ["-crf", str(value), "-b:v", "0"]
            video_note = f"VP9 CRF {value}"
        else:
            args += ["-b:v", f"{video_kbps}k"]
            video_note = f"VP9 {video_kbps} kb/s"
        audio_codec, audio_name, points = "libopus", "Opus", OPUS_KBPS
    else:
        value = _interpolate(compression, H264_CRF)
        args += ["-c:v", "libx264", "-preset", X264_PRESET]
        if crf:
            args += ["-crf", str(value)]
            video_note = f"H.264 CRF {value}"
        else:
            args += ["-b:v", f"{video_kbps}k", "-maxrate", f"{video_kbps * 3 // 2}k",
                     "-bufsize", f"{video_kbps * 2}k"]  # fmt: skip
            video_note = f"H.264 {video_kbps} kb/s"
        audio_codec, audio_name, points = "aac", "AAC", AAC_KBPS
    notes = [video_note]
    if audio is not None:
        channels = min(audio.channels or 2, 2 if task.target is F.WEBM else 8)
        kbps = audio_kbps or _audio_kbps(points, compression, channels)
        args += ["-map", f"0:{audio.index}", "-c:a", audio_codec, "-b:a", f"{kbps}k",
                 "-ac", str(channels)]  # fmt: skip
        notes.append(f"{audio_name} {kbps} kb/s")
    args += _output_args(task)
    quality = compression if crf else None
    return args, _Encoded(quality, (", ".join(notes) + ".",))


def _audio_kbps(points: tuple[tuple[int, int], ...], compression: int, channels: int) -> int:
    stereo = _interpolate(compression, points)
    return max(16, stereo * max(channels, 1) // 2)


def _output_args(task: _Task, target: OutputFormat | None = None) -> list[str]:
    target = target or task.target
    args = list(_STRIP_ARGS) if task.spec.strip_metadata else []
    if target in (F.MP4, F.MOV, F.M4A):
        args += ["-movflags", "+faststart"]
    if target in ANIMATION_TARGETS:
        args += ["-loop", "0"]
    return [*args, "-f", _MUXERS[target], str(task.out)]


def _can_copy(task: _Task, video: Stream, geometry: _Geometry) -> bool:
    """A convert that only changes the container keeps the streams as they are."""
    return (
        not task.compress
        and task.spec.compression == DEFAULT_COMPRESSION
        and task.spec.resize is ResizePreset.ORIGINAL
        and video.codec == _VIDEO_CODEC[task.target]
        and video.pix_fmt == "yuv420p"
        and video.sample_aspect == 1
        and not geometry.filters
        and (geometry.width, geometry.height) == video.oriented_size
    )


def _copy_video(
    task: _Task, video: Stream, audio: Stream | None, report: ProgressFn
) -> ConvertedFile:
    args = ["-i", input_url(task.src), "-map", f"0:{video.index}", "-c:v", "copy"]
    notes = [f"The {video.codec.upper()} video was copied as it is (only the container changed)"]
    if audio is not None:
        args += ["-map", f"0:{audio.index}"]
        if audio.codec in _COPYABLE_AUDIO[task.target]:
            args += ["-c:a", "copy"]
        elif task.target is F.WEBM:
            kbps = _audio_kbps(OPUS_KBPS, task.spec.compression, min(audio.channels or 2, 2))
            args += ["-c:a", "libopus", "-b:a", f"{kbps}k", "-ac", str(min(audio.channels, 2))]
            notes.append(f"the audio was encoded to Opus {kbps} kb/s")
        else:
            kbps = _audio_kbps(AAC_KBPS, task.spec.compression, audio.channels)
            args += ["-c:a", "aac", "-b:a", f"{kbps}k"]
            notes.append(f"the audio was encoded to AAC {kbps} kb/s")
    _run(task, args + _output_args(task), report, WORK_FACTOR["copy"])
    return _result(task, _Encoded(None, ("; ".join(notes) + ".",)), video.display_size)


def _video_to_size(
    task: _Task, graph: str, audio: Stream | None, report: ProgressFn
) -> _Encoded:
    """Average bitrates that fill `target_bytes`; re-encode lower while the file is over."""
    assert task.spec.target_bytes is not None
    target_bytes = task.spec.target_bytes
    seconds = max(task.duration, 0.1)
    total_kbps = int(target_bytes * 8 * SIZE_MARGIN / seconds / 1000)
    audio_kbps = 0
    min_audio = MIN_AUDIO_KBPS[task.target] if audio is not None else 0
    if audio is not None:
        default = _interpolate(
            task.spec.compression, OPUS_KBPS if task.target is F.WEBM else AAC_KBPS
        )
        audio_kbps = max(min_audio, min(default, total_kbps // 8))
    video_kbps = total_kbps - audio_kbps
    if video_kbps < MIN_VIDEO_KBPS:
        smallest = int((MIN_VIDEO_KBPS + min_audio) * 1000 * seconds / 8 / SIZE_MARGIN)
        raise _unreachable(smallest, target_bytes, "at the lowest usable bitrates")
    work = WORK_FACTOR[_VIDEO_CODEC[task.target]]
    return _fit(
        task,
        lambda kbps: _video_args(
            task, graph, audio, crf=False, video_kbps=kbps, audio_kbps=audio_kbps
        ),
        video_kbps,
        MIN_VIDEO_KBPS,
        report,
        work,
    )


def _fit(
    task: _Task,
    build: _ArgsFor,
    kbps: int,
    min_kbps: int,
    report: ProgressFn,
    work: float,
) -> _Encoded:
    """Encode at `kbps`; while the file is over the target, lower the rate by the overshoot."""
    assert task.spec.target_bytes is not None
    target_bytes = task.spec.target_bytes
    spans = [(0.0, 0.9), (0.9, 0.97), (0.97, 1.0)]
    size = tried = 0
    for attempt in range(SIZE_ATTEMPTS):
        args, encoded = build(kbps)
        _run(task, args, report, work, spans[attempt])
        size, tried = task.out.stat().st_size, kbps
        if size <= target_bytes:
            return encoded
        if kbps <= min_kbps:
            break
        kbps = max(min_kbps, int(kbps * target_bytes * SIZE_MARGIN / size))
    task.out.unlink()
    raise _unreachable(size, target_bytes, f"at {tried} kb/s")


def _unreachable(smallest: int, target_bytes: int, how: str) -> ConversionError:
    return ConversionError(
        f"The smallest file we could make {how} is about {smallest:,} bytes, over the target "
        f"of {target_bytes:,} bytes; raise targetBytes or send a shorter file.",
        detail={"smallestBytes": smallest, "targetBytes": target_bytes},
    )


def _keep_smaller(
    task: _Task, encoded: _Encoded, video: Stream | None, audio: Stream | None,
    report: ProgressFn,
) -> _Encoded:  # fmt: skip
    """Compress never hands back a larger file: the original (remuxed without metadata when
    stripping was asked for) replaces a re-encode that grew."""
    if task.out.stat().st_size < task.src.stat().st_size:
        return encoded
    if not task.spec.strip_metadata:
        shutil.copyfile(task.src, task.out)
        return _Encoded(
            None, ("Re-encoding made the file larger, so the original was kept.",), True
        )
    encoded_out = task.out.rename(task.out.with_name(f"encoded{task.out.suffix}"))
    _remux(task, video, audio, report)
    if task.out.stat().st_size <= encoded_out.stat().st_size:
        encoded_out.unlink()
        return _Encoded(
            None,
            ("Re-encoding made the file larger, so the original streams were kept "
             "without their metadata.",),
            True,
        )  # fmt: skip
    encoded_out.replace(task.out)
    return replace(
        encoded,
        notes=(*encoded.notes, "The file is larger than the original: removing metadata "
               "needed a re-encode."),
    )  # fmt: skip


def _remux(task: _Task, video: Stream | None, audio: Stream | None, report: ProgressFn) -> None:
    args = ["-i", input_url(task.src)]
    for stream in (video, audio):
        if stream is not None:
            args += ["-map", f"0:{stream.index}"]
    _run(task, [*args, "-c", "copy", *_output_args(task)], report, WORK_FACTOR["copy"])


# -- video -> animation ----------------------------------------------------------------------


def _to_animation(task: _Task, report: ProgressFn) -> ConvertedFile:
    video = _need_video(task)
    target = task.target
    plan = _plan(video, task.spec)
    notes: list[str] = []
    max_width = ANIMATION_MAX_WIDTH[target]
    if plan.width > max_width and task.spec.resize not in _EXPLICIT_PRESETS:
        plan = _shrunk(plan, max_width / plan.width)
        notes.append(f"Animated {target.value} is limited to {max_width} px wide.")
    geometry = _geometry(video, plan, even=False)
    max_fps = ANIMATION_MAX_FPS[target]
    rate = min(video.fps or max_fps, max_fps)
    if video.fps and video.fps > max_fps:
        notes.append(f"Frames were reduced to {max_fps} per second.")
    filters = [f"fps={rate:g}", *geometry.filters]
    work = WORK_FACTOR[target.value]
    if target is F.GIF:
        palette = task.workdir / "palette.png"
        first = _graph(video, filters, flatten=video.has_alpha, finish=("palettegen",))
        _run(task, ["-i", input_url(task.src), "-filter_complex", first, "-map", "[v]",
                    "-frames:v", "1", "-f", "image2", str(palette)],
             report, work / 2, (0.0, 0.5))  # fmt: skip
        graph = _graph(video, filters, flatten=video.has_alpha, out="x")
        graph += ";[x][1:v]paletteuse=dither=bayer:bayer_scale=5:diff_mode=rectangle[v]"
        args = ["-i", input_url(task.src), "-i", str(palette), "-filter_complex", graph,
                "-map", "[v]"]  # fmt: skip
        _run(task, args + _output_args(task), report, work / 2, (0.5, 1.0))
        palette.unlink()
        encoded = _Encoded(None, tuple(notes))
    else:
        quality = task.spec.compression
        args = ["-i", input_url(task.src), "-filter_complex",
                _graph(video, filters, flatten=False), "-map", "[v]",
                "-c:v", "libwebp_anim", "-lossless", "0", "-quality", str(quality)]  # fmt: skip
        _run(task, args + _output_args(task), report, work)
        encoded = _Encoded(quality, tuple(notes))
    return _result(task, encoded, (geometry.width, geometry.height))


def _shrunk(plan: ResizePlan, factor: float) -> ResizePlan:
    def scaled(value: int) -> int:
        return max(1, round(value * factor))

    return replace(
        plan,
        scaled_width=scaled(plan.scaled_width),
        scaled_height=scaled(plan.scaled_height),
        width=scaled(plan.width),
        height=scaled(plan.height),
    )


# -- video -> still frame --------------------------------------------------------------------


def _to_frame(task: _Task, limits: Limits, report: ProgressFn) -> ConvertedFile:
    """One representative frame as a PNG, then the image converter (resize, quality)."""
    video = _need_video(task)
    at = task.duration * POSTER_AT if task.duration >= SHORT_CLIP_SECONDS else 0.0
    frame = task.workdir / "frame.png"
    filters = []
    if video.sample_aspect != 1:
        filters = [f"scale={video.display_size[0]}:{video.display_size[1]}", "setsar=1"]
    graph = _graph(video, filters, flatten=False)
    for seek in dict.fromkeys((at, 0.0)):  # a seek past the last keyframe may give nothing
        args = ["-ss", f"{seek:.3f}", "-i", input_url(task.src), "-filter_complex", graph,
                "-map", "[v]", "-frames:v", "1",
                "-pix_fmt", "rgba" if video.has_alpha else "rgb24",
                "-f", "image2", str(frame)]  # fmt: skip
        _run(task, args, lambda _f: None, WORK_FACTOR["frame"])
        if frame.exists() and frame.stat().st_size > 0:
            at = seek
            break
    else:
        raise ConversionError("No video frame could be decoded from this file.")
    report(0.5)
    still = SourceInfo(kind=Kind.PNG.value, family="image", mime_type="image/png",
                       size=frame.stat().st_size)  # fmt: skip
    result = ImageConverter().convert(frame, still, task.spec, task.workdir, limits)
    frame.unlink()
    return replace(result, notes=(f"The frame at {seconds_label(at)} was used.", *result.notes))


# -- audio -----------------------------------------------------------------------------------


def _to_audio(task: _Task, report: ProgressFn) -> ConvertedFile:
    audio = task.info.audio
    if audio is None:
        raise ConversionError(
            f"This file has no audio track, so it cannot become {task.target.value}."
        )
    spec = task.spec
    if task.compress and spec.lossless and task.target not in _LOSSLESS_TARGETS:
        # A lossy stream cannot be re-encoded without loss: keep it, drop what may go.
        _remux(task, None, audio, report)
        return _result(task, _Encoded(None, (
            "Lossless compression keeps the audio stream as it is; only metadata can be "
            "removed.",)), None)  # fmt: skip
    if task.compress and spec.mode is CompressMode.TARGET_SIZE and (
        task.target not in _LOSSLESS_TARGETS and not spec.lossless
    ):
        encoded = _audio_to_size(task, audio, report)
    else:
        args, encoded = _audio_args(task, audio, kbps=0)
        _run(task, args, report, AUDIO_WORK_FACTOR)
        if task.compress and spec.mode is CompressMode.TARGET_SIZE:
            assert spec.target_bytes is not None
            size = task.out.stat().st_size
            if size > spec.target_bytes:
                task.out.unlink()
                raise _unreachable(size, spec.target_bytes, "losslessly")
    if task.compress:
        encoded = _keep_smaller(task, encoded, None, audio, report)
    return _result(task, encoded, None)


def _audio_args(task: _Task, audio: Stream, *, kbps: int) -> tuple[list[str], _Encoded]:
    """ffmpeg arguments for an audio target: quality from compression, or `kbps` (CBR/ABR)."""
    compression = task.spec.compression
    args = ["-i", input_url(task.src), "-map", f"0:{audio.index}"]
    quality: int | None = compression
    match task.target:
        case F.MP3:
            args += ["-c:a", "libmp3lame"]
            if audio.channels > 2:
                args += ["-ac", "2"]
            if kbps:
                args += ["-b:a", f"{kbps}k"]
                note = f"MP3 {kbps} kb/s"
            else:
                vbr = _interpolate(compression, MP3_VBR)
                args += ["-q:a", str(vbr)]
                note = f"MP3 VBR -V {vbr}"
        case F.OGG:
            args += ["-c:a", "libvorbis"]
            if kbps:
                args += ["-b:a", f"{kbps}k"]
                note = f"Vorbis {kbps} kb/s"
            else:
                level = _interpolate(compression, VORBIS_QUALITY)
                args += ["-q:a", str(level)]
                note = f"Vorbis quality {level}"
        case F.M4A:
            rate = kbps or _audio_kbps(AAC_KBPS, compression, audio.channels)
            args += ["-c:a", "aac", "-b:a", f"{rate}k"]
            note = f"AAC {rate} kb/s"
        case F.FLAC:
            level = FLAC_COMPRESS_LEVEL if task.compress else FLAC_LEVEL
            args += ["-c:a", "flac", "-compression_level", str(level)]
            if not _deep(audio):
                args += ["-sample_fmt", "s16"]
            quality, note = None, f"FLAC level {level}"
        case F.WAV:
            if task.compress and (task.spec.lossless or not _deep(audio)) and (
                audio.codec.startswith("pcm_")
            ):
                args += ["-c:a", "copy"]
                note = ("WAV holds uncompressed audio; convert to flac (lossless) or mp3, ogg "
                        "or m4a for a smaller file")  # fmt: skip
            else:
                pcm = "pcm_s24le" if _deep(audio) and not task.compress else "pcm_s16le"
                args += ["-c:a", pcm]
                note = f"{24 if pcm == 'pcm_s24le' else 16}-bit PCM"
            quality = None
        case _:
            raise ValueError(f"no audio encoder for {task.target}")
    return args + _output_args(task), _Encoded(quality, (note + ".",))


def _deep(audio: Stream) -> bool:
    """More than 16 bits per sample in a lossless source (worth keeping in wav/flac)."""
    lossless = audio.codec.startswith("pcm_") or audio.codec in _LOSSLESS_AUDIO_CODECS
    return lossless and audio.bits > 16


def _audio_to_size(task: _Task, audio: Stream, report: ProgressFn) -> _Encoded:
    assert task.spec.target_bytes is not None
    target_bytes = task.spec.target_bytes
    seconds = max(task.duration, 0.1)
    kbps = int(target_bytes * 8 * SIZE_MARGIN / seconds / 1000)
    min_kbps = MIN_AUDIO_KBPS[task.target]
    if kbps < min_kbps:
        smallest = int(min_kbps * 1000 * seconds / 8 / SIZE_MARGIN)
        raise _unreachable(smallest, target_bytes, f"at {min_kbps} kb/s")
    kbps = min(kbps, MAX_AUDIO_KBPS[task.target])
    return _fit(
        task, lambda rate: _audio_args(task, audio, kbps=rate), kbps, min_kbps, report,
        AUDIO_WORK_FACTOR,
    )  # fmt: skip
