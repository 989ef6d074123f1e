"""The ffmpeg commands of a stream: one rendition encoded to fragmented MP4 with a keyframe
on every segment boundary, then every rendition packaged, stream-copied, into CMAF segments
that one HLS master playlist and one DASH manifest both name (ffmpeg's dash muxer).

Both steps stream from disk to disk: memory stays at ffmpeg's own buffers whatever the
video's length. The pool's task guard (CONVERTLY_TASK_MAX_MEMORY) bounds them as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from convertly.converters.base import ProgressFn
from convertly.converters.media.ffmpeg import ProgressReader, input_url, run_ffmpeg
from convertly.streams import layout
from convertly.streams.model import Clip, ClipMode, Rendition

PRESET = "veryfast"
MAXRATE_FACTOR = 1.1   # peak video bitrate over the target
BUFSIZE_FACTOR = 2.0   # the rate-control buffer, in seconds of the target bitrate
FRAGMENT_FLAGS = "+frag_keyframe+empty_moov+default_base_moof"


def clip_input(clip: Clip | None) -> list[str]:
    """Input options for the part of the source a stream covers: `accurate` decodes from
    the keyframe before `start` and drops what precedes it; `fast` starts at that keyframe."""
    if clip is None:
        return []
    args = [] if clip.mode is ClipMode.ACCURATE else ["-noaccurate_seek"]
    if clip.start:
        args += ["-ss", f"{clip.start:.3f}"]
    if clip.length is not None:
        args += ["-t", f"{clip.length:.3f}"]
    return args


def rendition_args(src: Path, out: Path, rendition: Rendition, *, clip: Clip | None,
                   segment_duration: int, with_audio: bool) -> list[str]:
    """ffmpeg arguments (after the program's own) encoding `rendition` of `src` into `out`:
    H.264 at its height (width from the aspect ratio, even), its bitrate capped at
    MAXRATE_FACTOR, a keyframe every `segment_duration` seconds and at no scene cut, so
    every rendition's segments start on the same frames; AAC audio when `with_audio`."""
    kbps = rendition.bitrate
    args = [
        *clip_input(clip), "-i", input_url(src), "-map", "0:v:0",
        "-vf", f"scale=-2:{rendition.height}:flags=bicubic,format=yuv420p",
        "-c:v", "libx264", "-preset", PRESET, "-profile:v", "high",
        "-b:v", f"{kbps}k", "-maxrate", f"{round(kbps * MAXRATE_FACTOR)}k",
        "-bufsize", f"{round(kbps * BUFSIZE_FACTOR)}k",
        "-force_key_frames", f"expr:gte(t,n_forced*{segment_duration})",
        "-sc_threshold", "0",
    ]  # fmt: skip
    if with_audio:
        args += ["-map", "0:a:0", "-c:a", "aac", "-b:a", f"{rendition.audio_bitrate or 128}k",
                 "-ac", "2"]
    else:
        args += ["-an"]
    return [*args, "-sn", "-dn", "-map_metadata", "-1", "-movflags", FRAGMENT_FLAGS,
            "-f", "mp4", str(out)]


def encode_rendition(src: Path, out: Path, rendition: Rendition, *, clip: Clip | None,
                     segment_duration: int, with_audio: bool, duration: float | None,
                     timeout: float, progress: ProgressFn) -> None:
    """Run `rendition_args`; `progress` gets the fraction encoded (from ffmpeg's own
    progress). ConversionError / ConversionTimeoutError when ffmpeg fails or overruns."""
    run_ffmpeg(rendition_args(src, out, rendition, clip=clip,
                              segment_duration=segment_duration, with_audio=with_audio),
               timeout=timeout, reader=ProgressReader(duration, progress),
               workdir=out.parent)


def package_args(inputs: Sequence[Path], out_dir: Path, *, audio_from: int | None,
                 segment_duration: int, hls: bool) -> list[str]:
    """ffmpeg arguments packaging the encoded renditions `inputs` (smallest first), copied,
    into `out_dir`: representation i is input i's video, and the audio of input
    `audio_from` is representation len(inputs). The DASH manifest is always written (the
    muxer's own); the HLS master and media playlists too when `hls`."""
    args: list[str] = []
    for path in inputs[1:]:
        args += ["-i", input_url(path)]
    for index in range(len(inputs)):
        args += ["-map", f"{index}:v:0"]
    sets = "id=0,streams=v"
    if audio_from is not None:
        args += ["-map", f"{audio_from}:a:0"]
        sets += " id=1,streams=a"
    args += [
        "-c", "copy", "-f", "dash", "-seg_duration", str(segment_duration),
        "-use_template", "1", "-use_timeline", "1",
        "-init_seg_name", layout.INIT_SEGMENT, "-media_seg_name", layout.MEDIA_SEGMENT,
        "-adaptation_sets", sets,
    ]  # fmt: skip
    if hls:
        args += ["-hls_playlist", "1", "-hls_master_name", layout.MASTER_PLAYLIST]
    return [*args, str(out_dir / layout.DASH_MANIFEST)]


def package(inputs: Sequence[Path], out_dir: Path, *, audio_from: int | None,
            segment_duration: int, hls: bool, timeout: float) -> None:
    """Run `package_args` (the first input is passed as the guarded source)."""
    run_ffmpeg(["-i", input_url(inputs[0]),
                *package_args(inputs, out_dir, audio_from=audio_from,
                              segment_duration=segment_duration, hls=hls)],
               timeout=timeout, reader=ProgressReader(None, lambda _f: None),
               workdir=out_dir)


def segment_count(out_dir: Path, representation: int) -> int:
    return sum(1 for _ in out_dir.glob(f"seg-{representation}-*.m4s"))
