"""Media test files made by code with ffmpeg: a Matroska file whose header understates its
length (the Duration element rewritten), and the length of what a file really holds."""

from __future__ import annotations

import json
import struct
import subprocess
import tempfile
from pathlib import Path

# The Segment's Duration element: ID 0x4489, an 8-byte float (ffmpeg writes a double).
DURATION_ELEMENT = b"\x44\x89\x88"


def lying_matroska(seconds: float, *, declared: float = 1.0, audio: bool = False,
                   fps: int = 1) -> bytes:
    """A Matroska file of `seconds` whose header says it lasts `declared` seconds (ffprobe
    believes the header). Video only: H.264 with B-frames, 32x32 at `fps`, one keyframe
    (~15 KB for 600 s at 1 frame/s); or audio only: Opus mono at 6 kb/s."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clip.mkv"
        if audio:
            source = ["-f", "lavfi", "-i", f"sine=f=440:d={seconds}:sample_rate=8000",
                      "-c:a", "libopus", "-b:a", "6k", "-ac", "1"]  # fmt: skip
        else:
            source = ["-f", "lavfi", "-i", f"color=c=blue:s=32x32:r={fps}:d={seconds}",
                      "-c:v", "libx264", "-preset", "veryfast", "-g", "100000",
                      "-pix_fmt", "yuv420p"]  # fmt: skip
        subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", *source,
                        "-write_crc32", "0", "-f", "matroska", str(out)],
                       check=True, timeout=60)  # fmt: skip
        data = bytearray(out.read_bytes())
    at = data.find(DURATION_ELEMENT)
    assert at > 0, "ffmpeg wrote no 8-byte Duration element"
    (written,) = struct.unpack(">d", data[at + 3 : at + 11])
    assert abs(written / 1000 - seconds) < 1.5, written  # milliseconds (TimecodeScale 1e6)
    data[at + 3 : at + 11] = struct.pack(">d", declared * 1000)
    return bytes(data)


def declared_seconds(path: Path) -> float:
    """The duration ffprobe reports (the header's)."""
    return float(_ffprobe(path, "format=duration")["format"]["duration"])


def real_seconds(path: Path) -> float:
    """How long the file really is: the end of its last packet, every packet read."""
    packets = _ffprobe(path, "packet=pts_time,duration_time", "-show_packets")["packets"]
    return max(float(p["pts_time"]) + float(p.get("duration_time") or 0) for p in packets)


def _ffprobe(path: Path, entries: str, *extra: str) -> dict[str, list[dict[str, str]]]:
    done = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_entries", entries,
                           *extra, str(path)], check=True, timeout=60, capture_output=True)
    result: dict[str, list[dict[str, str]]] = json.loads(done.stdout)
    return result
