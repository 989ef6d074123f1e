"""A small source video for stream tests, made by ffmpeg: 320×180, 25 fps, a moving test
pattern and a tone."""

from __future__ import annotations

import subprocess
from pathlib import Path


def source_video(path: Path, *, seconds: float = 3, size: str = "320x180",
                 audio: bool = True) -> Path:
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}"]
    if audio:
        argv += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                 "-c:a", "aac", "-b:a", "64k"]
    argv += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(argv, check=True, timeout=60)
    return path


def ffprobe_streams(path: Path) -> list[dict[str, str]]:
    import json
    done = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                           "stream=codec_type,codec_name,width,height,bit_rate",
                           "-of", "json", str(path)],
                          check=True, capture_output=True, text=True, timeout=30)
    streams: list[dict[str, str]] = json.loads(done.stdout)["streams"]
    return streams
