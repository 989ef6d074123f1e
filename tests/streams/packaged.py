"""A tiny stream packaged by real ffmpeg the way a packager writes one: two H.264 renditions
and AAC audio as fMP4 segments, an HLS master and media playlists and a DASH MPD over the
same segments."""

from __future__ import annotations

import subprocess
from pathlib import Path

SECONDS = 3
HEIGHTS = (180, 144)


def package(out: Path, *, seconds: int = SECONDS) -> Path:
    """Write the stream's files into `out` (created) and return it."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([
        "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
        "-filter_complex", "[0:v]split=2[a][b];[b]scale=-2:144[b2]",
        "-map", "[a]", "-map", "[b2]", "-map", "1:a",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25",
        "-sc_threshold", "0", "-b:v:0", "300k", "-b:v:1", "150k", "-c:a", "aac", "-b:a", "48k",
        "-f", "dash", "-seg_duration", "1", "-use_template", "1", "-use_timeline", "0",
        "-hls_playlist", "1", "-adaptation_sets", "id=0,streams=v id=1,streams=a",
        str(out / "manifest.mpd"),
    ], check=True, timeout=60)  # fmt: skip
    return out
