"""Media compress: a target size reached by bitrate, and never a file larger than the original.

Target size divides the target's bytes by the duration into average bitrates (audio gets an
eighth next to video, within bounds), encodes, and while the file is over the target lowers
the rate by the overshoot. Lossless audio targets (wav, flac) have no bitrate to lower: the
file fits or the target is out of reach. A source that already fits, metadata and all, is
kept as it is. A re-encode that grew is replaced by the original (remuxed without metadata
when that was asked for).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from convertly.converters.media.ffmpeg import Encoding, Stream, input_url, video_audio_kbps
from convertly.converters.media.task import (
    AUDIO_TARGETS,
    VIDEO_TARGETS,
    WORK_FACTOR,
    Task,
    cover_args,
)
from convertly.errors import ConversionError
from convertly.models import CompressMode, ConvertedFile, OutputFormat

F = OutputFormat

# Target size: lowest bitrates (kb/s) it goes to. LAME's MPEG-1 floor at 32-48 kHz,
# libvorbis' floor for 44.1 kHz stereo; below ~40 kb/s of video H.264 and VP9 fall apart.
MIN_AUDIO_KBPS = {F.MP3: 32, F.OGG: 48, F.M4A: 24, F.MP4: 24, F.MOV: 24, F.WEBM: 16}
MAX_AUDIO_KBPS = {F.MP3: 320, F.OGG: 500, F.M4A: 512}
MIN_VIDEO_KBPS = 40
SIZE_ATTEMPTS = 3
SIZE_MARGIN = 0.96  # of the target, left for container overhead and rate-control slack

_Encode = Callable[[int], Encoding]  # bitrate in kb/s -> ffmpeg arguments


def fits_already(task: Task) -> bool:
    spec = task.spec
    return (
        task.compress
        and spec.mode is CompressMode.TARGET_SIZE
        and not spec.strip_metadata
        and task.src.stat().st_size <= (spec.target_bytes or 0)
    )


def keep_original(task: Task, note: str) -> ConvertedFile:
    shutil.copyfile(task.src, task.out)
    return task.result([note], None, _display_size(task))


def video_to_size(task: Task, audio: Stream | None,
                  encode: Callable[[int, int], Encoding]) -> Encoding:  # fmt: skip
    """Average bitrates that fill the target size; audio gets an eighth, within bounds."""
    assert task.spec.target_bytes is not None
    seconds = max(task.duration, 0.1)
    total_kbps = int(task.spec.target_bytes * 8 * SIZE_MARGIN / seconds / 1000)
    audio_kbps = min_audio = 0
    if audio is not None:
        min_audio = MIN_AUDIO_KBPS[task.target]
        usual = video_audio_kbps(task.target.value, audio, task.spec.compression)
        audio_kbps = max(min_audio, min(usual, total_kbps // 8))
    video_kbps = total_kbps - audio_kbps
    if video_kbps < MIN_VIDEO_KBPS:
        smallest = int((MIN_VIDEO_KBPS + min_audio) * 1000 * seconds / 8 / SIZE_MARGIN)
        raise _unreachable(smallest, task.spec.target_bytes, "at the lowest usable bitrates")
    return _fit(task, lambda kbps: encode(kbps, audio_kbps), video_kbps, MIN_VIDEO_KBPS,
                WORK_FACTOR[task.target.value])  # fmt: skip


def audio_to_size(task: Task, encode: _Encode) -> Encoding:
    assert task.spec.target_bytes is not None
    seconds = max(task.duration, 0.1)
    kbps = int(task.spec.target_bytes * 8 * SIZE_MARGIN / seconds / 1000)
    min_kbps = MIN_AUDIO_KBPS[task.target]
    if kbps < min_kbps:
        smallest = int(min_kbps * 1000 * seconds / 8 / SIZE_MARGIN)
        raise _unreachable(smallest, task.spec.target_bytes, f"at {min_kbps} kb/s")
    kbps = min(kbps, MAX_AUDIO_KBPS[task.target])
    return _fit(task, encode, kbps, min_kbps, WORK_FACTOR["audio"])


def _fit(task: Task, encode: _Encode, kbps: int, min_kbps: int, work: float) -> Encoding:
    """Encode at `kbps`; while the file is over the target, lower the rate by the overshoot."""
    assert task.spec.target_bytes is not None
    target_bytes = task.spec.target_bytes
    spans = [(0.0, 0.9), (0.9, 0.97), (0.97, 1.0)]
    size = tried = 0
    for attempt in range(SIZE_ATTEMPTS):
        done = encode(kbps)
        task.run(list(done.args), work, spans[attempt])
        size, tried = task.out.stat().st_size, kbps
        if size <= target_bytes:
            return done
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


def check_lossless_size(task: Task) -> None:
    """Target size without a bitrate to lower: the file fits or the target is out of reach."""
    target_bytes = task.spec.target_bytes
    if not (task.compress and task.spec.mode is CompressMode.TARGET_SIZE and target_bytes):
        return
    if (size := task.out.stat().st_size) > target_bytes:
        task.out.unlink()
        raise _unreachable(size, target_bytes, "losslessly")


def keep_smaller(
    task: Task, done: Encoding, notes: list[str], size: tuple[int, int] | None
) -> ConvertedFile:
    """Compress never hands back a larger file: the original (remuxed without metadata when
    that was asked for) replaces a re-encode that grew."""
    if task.out.stat().st_size < task.src.stat().st_size:
        return task.result(notes, done.quality, size)
    if not task.spec.strip_metadata:
        return keep_original(task, "Re-encoding made the file larger, so the original was "
                             "kept.")  # fmt: skip
    encoded = task.out.rename(task.out.with_name(f"encoded{task.out.suffix}"))
    remux(task)
    if task.out.stat().st_size <= encoded.stat().st_size:
        encoded.unlink()
        return task.result(["Re-encoding made the file larger, so the original streams were "
                            "kept without their metadata."], None, _display_size(task))
    encoded.replace(task.out)
    return task.result([*notes, "The file is larger than the original: removing metadata "
                        "needed a re-encode."], done.quality, size)  # fmt: skip


def remux(task: Task) -> None:
    """The source's video and audio streams as they are, in a new file of the same format."""
    args = ["-i", input_url(task.src)]
    streams = [task.info.audio] if task.target in AUDIO_TARGETS else [task.info.video,
                                                                       task.info.audio]
    for stream in streams:
        if stream is not None:
            args += ["-map", f"0:{stream.index}"]
    task.run([*args, "-c", "copy", *cover_args(task), *task.output()], WORK_FACTOR["copy"])


def _display_size(task: Task) -> tuple[int, int] | None:
    video = task.info.video
    return video.display_size if video is not None and task.target in VIDEO_TARGETS else None
