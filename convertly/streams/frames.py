"""Still frames of a stream's video: the poster at a chosen time and the thumbnail
candidates (a few frames spread over the video for a user to pick a poster from).

One ffmpeg run grabs every frame asked for: each time is its own input, seeked before
decoding (fast, and exact since ffmpeg decodes from the keyframe before it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from convertly.converters.media.ffmpeg import SOURCE_GUARD, input_url
from convertly.converters.process import run, which
from convertly.errors import ConversionError, InvalidRequestError

FRAME_TIMEOUT = 60.0
FRAME_MAX_HEIGHT = 720
CANDIDATE_COUNT = 5
# A frame this close to the end may not exist (the last frame starts before it).
END_MARGIN = 0.1


def check_time(seconds: float, duration: float | None) -> float:
    """`seconds` as a time inside the video; InvalidRequestError when it is not."""
    if seconds < 0 or (duration is not None and seconds >= duration):
        inside = f" (0 to {duration:.2f} s)" if duration is not None else ""
        raise InvalidRequestError(f"`timeSeconds` must be a time inside the video{inside}.")
    return seconds


def candidate_times(duration: float, count: int = CANDIDATE_COUNT) -> list[float]:
    """`count` times spread over the video, away from its first and last moments (10 %,
    30 %, 50 %, ... of it), rounded to milliseconds."""
    return [round(duration * (2 * i + 1) / (2 * count), 3) for i in range(count)]


def grab_frames(src: Path, times: Sequence[float], workdir: Path, *, duration: float | None,
                max_height: int = FRAME_MAX_HEIGHT) -> list[Path]:
    """JPEG frames of `src` at `times` (seconds), at most `max_height` tall, written in
    `workdir` as frame-0.jpg, frame-1.jpg, ...; ConversionError when ffmpeg fails."""
    last = max(0.0, duration - END_MARGIN) if duration is not None else None
    return grab_frames_of([(src, min(t, last) if last is not None else t) for t in times],
                          workdir, max_height=max_height)


def grab_frames_of(frames: Sequence[tuple[Path, float]], workdir: Path, *,
                   max_height: int = FRAME_MAX_HEIGHT) -> list[Path]:
    """One JPEG frame per (file, time), in one ffmpeg run; see `grab_frames`."""
    argv: list[str | Path] = [which("ffmpeg"), "-hide_banner", "-nostdin", "-v", "error", "-y"]
    for src, seconds in frames:
        argv += [*SOURCE_GUARD, "-ss", f"{max(0.0, seconds):.3f}", "-i", input_url(src)]
    outputs = [workdir / f"frame-{index}.jpg" for index in range(len(frames))]
    for index, out in enumerate(outputs):
        argv += ["-map", f"{index}:v:0", "-frames:v", "1", "-vf",
                 f"scale=-2:'min({max_height},ih)'", "-q:v", "3", "-update", "1", out]
    done = run(argv, timeout=FRAME_TIMEOUT, cwd=workdir, check=False)
    missing = [out for out in outputs if not out.is_file() or out.stat().st_size == 0]
    if done.returncode != 0 or missing:
        raise ConversionError("The video's frames could not be read (ffmpeg: "
                              f"{done.stderr_tail.strip()[-200:] or 'no frame'}).")
    return outputs
