"""A tiny stream packaged by real ffmpeg the way the packager writes one
(`convertly.streams.layout`): two H.264 renditions and AAC audio as fMP4 segments, an HLS
master and media playlists and a DASH MPD over the same segments; and such a stream stored
as a ready stream's `play/` files, its record in the store."""

from __future__ import annotations

import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from convertly.service import Services
from convertly.streams import layout
from convertly.streams.model import (
    PackageFormat,
    Rendition,
    StreamStatus,
    VideoStream,
    new_playback_id,
    new_stream_id,
)

SECONDS = 3
HEIGHTS = (144, 180)  # representation 0 is the smallest


def package(out: Path, *, seconds: int = SECONDS) -> Path:
    """Write the stream's files into `out` (created) and return it."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([
        "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
        "-filter_complex", "[0:v]split=2[a][b];[b]scale=-2:144[b2]",
        "-map", "[b2]", "-map", "[a]", "-map", "1:a",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25",
        "-sc_threshold", "0", "-b:v:0", "150k", "-b:v:1", "300k", "-c:a", "aac", "-b:a", "48k",
        "-f", "dash", "-seg_duration", "1", "-use_template", "1", "-use_timeline", "0",
        "-init_seg_name", "init-$RepresentationID$.m4s",
        "-media_seg_name", "seg-$RepresentationID$-$Number%05d$.m4s", "-hls_playlist", "1",
        "-adaptation_sets", "id=0,streams=v id=1,streams=a",
        str(out / "manifest.mpd"),
    ], check=True, timeout=60)  # fmt: skip
    return out


def store_ready(services: Services, tenant: str, packaged: Path, **fields: Any) -> VideoStream:
    """A ready stream of `tenant` whose `play/` files are the ones in `packaged`, stored
    with its record; `fields` set the record's other fields (access, allowed_domains, ...)."""
    stream = VideoStream(
        id=new_stream_id(), tenant=tenant, playback_id=new_playback_id(), source_key="unused",
        status=StreamStatus.READY, progress=1.0, duration=float(SECONDS), width=320,
        height=180, has_audio=True, segment_duration=1, created_at=time.time(),
        package_formats=(PackageFormat.HLS, PackageFormat.DASH),
        renditions=(Rendition("144p", 0, 144, 150, 48, width=256, done=True),
                    Rendition("180p", 1, 180, 300, 48, width=320, done=True)),
    )
    stream = replace(stream, **fields)
    for path in sorted(packaged.iterdir()):
        services.storage.put_file(layout.play_key(tenant, stream.id, path.name), path)
    services.streams.add(stream)
    return stream
