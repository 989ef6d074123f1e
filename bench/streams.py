"""Video stream rows.

- streams: a 30 s 1080p clip → the `standard` ladder (360/480/720p, HLS + DASH) through
  `POST /api/video/streams` (embedded, one conversion process; ffmpeg uses every core
  itself), from the request to `ready`, against the same ffmpeg commands (one encode per
  rendition, then the packaging) run alone before and after (their mean is the baseline).
- streams-workers: the same stream in distributed mode (Redis + S3 on this machine) with 1
  and then 2 media workers of one process each: the speed-up of the second worker.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.corpus import make_clip
from bench.harness import Server, cluster, server

BODY = {"profile": "standard", "packageFormats": ["hls", "dash"], "access": "public"}


def direct_commands(clip: Path, out: Path) -> list[list[str]]:
    """The ffmpeg commands a `standard` stream of `clip` runs, writing into `out`, as
    `convertly.converters.media.ffmpeg.run_ffmpeg` starts them."""
    from convertly.converters.media.ffmpeg import SOURCE_GUARD, input_url
    from convertly.streams import encode, ladder
    from convertly.streams.model import Profile

    prefix = ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-v", "error",
              "-progress", "pipe:1", "-stats_period", "0.5", "-y", *SOURCE_GUARD]
    rungs = ladder.plan(Profile.STANDARD, 1080)
    outs = [out / f"{r.id}.mp4" for r in rungs]
    commands = [[*prefix, *encode.rendition_args(clip, path, r, clip=None,
                                                  segment_duration=6,
                                                  with_audio=r is rungs[-1])]
                for r, path in zip(rungs, outs, strict=True)]
    play = out / "play"
    play.mkdir()
    commands.append([*prefix, "-i", input_url(outs[0]),
                     *encode.package_args(outs, play, audio_from=len(outs) - 1,
                                          segment_duration=6, hls=True)])
    return commands


def _alone(clip: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="convertly-bench-streams-") as root:
        commands = direct_commands(clip, Path(root))
        start = time.perf_counter()
        for argv in commands:
            subprocess.run(argv, check=True, capture_output=True)
        return time.perf_counter() - start


def _stream_seconds(srv: Server, clip: Path) -> float:
    """Seconds from POST /api/video/streams to `ready` (the clip stored beforehand)."""
    with srv.client() as client:
        with clip.open("rb") as fh:
            stored = client.post("/api/files", files=[("file", (clip.name, fh, "video/mp4"))])
        stored.raise_for_status()
        start = time.perf_counter()
        created = client.post("/api/video/streams",
                              json={**BODY, "sourceFileId": stored.json()["file"]["id"]})
        created.raise_for_status()
        stream = _ready(client, created.json()["stream"]["id"])
        seconds = time.perf_counter() - start
    heights = [r["height"] for r in stream["renditions"]]
    if stream["status"] != "ready" or heights != [360, 480, 720]:
        raise RuntimeError(f"stream did not become ready: {stream}")
    return seconds


def _ready(client: httpx.Client, stream_id: str) -> dict[str, Any]:
    while True:
        stream: dict[str, Any] = client.get(f"/api/video/streams/{stream_id}").json()["stream"]
        if stream["status"] in ("ready", "failed"):
            return stream
        time.sleep(0.1)


def stream_ladder(corpus: Path) -> dict[str, Any]:
    clip = make_clip(corpus / "video")
    before = _alone(clip)
    with server(1) as srv:
        api = _stream_seconds(srv, clip)
    after = _alone(clip)
    direct = (before + after) / 2
    return {
        "row": "streams",
        "name": "streams: 30 s 1080p → standard ladder (360/480/720p, HLS + DASH), "
                "/api/video/streams vs the same ffmpeg commands alone",
        "ffmpegSeconds": round(direct, 2), "ffmpegRuns": [round(before, 2), round(after, 2)],
        "apiSeconds": round(api, 2), "ratio": round(direct / api, 3), "target": 0.95,
    }


def stream_workers(corpus: Path) -> dict[str, Any]:
    clip = make_clip(corpus / "video")
    seconds = {}
    for workers in (1, 2):
        with cluster(workers) as parts, server(1, parts.env) as srv:
            seconds[workers] = _stream_seconds(srv, clip)
    return {
        "row": "streams-workers",
        "name": "streams: the same ladder, distributed (Redis + S3 here), 2 media workers "
                "vs 1",
        "oneWorkerSeconds": round(seconds[1], 2), "twoWorkersSeconds": round(seconds[2], 2),
        "ratio": round(seconds[1] / seconds[2], 3),
        "note": "speed-up of the second worker; on one 2-core host each x264 already uses "
                "both cores, so a second host is where it pays",
    }
