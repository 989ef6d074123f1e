"""Video row: a 30 s 1080p clip → 720p mp4 through `POST /api/jobs` (embedded, one
conversion process: ffmpeg uses every core itself) against the very ffmpeg command the
converter runs, run alone before and after the API run (their mean is the baseline, so
drift on a shared machine hits both sides alike)."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.corpus import make_clip
from bench.harness import server, wait_job


class _Captured(BaseException):
    """Stops the converter once its ffmpeg command is known (not an Exception, so no
    handler on the way translates it)."""

    def __init__(self, argv: tuple[str, ...]) -> None:
        super().__init__()
        self.argv = argv


def converter_command(clip: Path, out_dir: Path) -> list[str]:
    """The converter's own ffmpeg argv for this clip (720p mp4), reading `clip` and writing
    into `out_dir`: the converter runs up to the point where it would start ffmpeg."""
    from convertly.converters.builtin import default_registry, process
    from convertly.models import FileSpec, OutputFormat, ResizePreset
    from convertly.settings import Settings
    from convertly.sniff import Kind, sniff_file

    spec = FileSpec(index=0, filename=clip.name, format=OutputFormat.MP4,
                    resize=ResizePreset.HEIGHT, resize_height=720)
    real_run = process.run

    def capturing_run(argv: Any, **kwargs: Any) -> Any:
        if Path(argv[0]).name == "ffmpeg":
            raise _Captured(tuple(str(a) for a in argv))
        return real_run(argv, **kwargs)

    process.run = capturing_run
    try:
        with tempfile.TemporaryDirectory(prefix="convertly-bench-video-") as root:
            src = Path(root) / "source"
            src.symlink_to(clip.resolve())
            source = sniff_file(src)
            default_registry().find(Kind(source.kind), OutputFormat.MP4).convert(
                src, source, spec, Path(root), Settings())
    except _Captured as captured:
        argv = list(captured.argv)
    else:
        raise RuntimeError("the media converter did not run ffmpeg")
    finally:
        process.run = real_run
    argv[-1] = str(out_dir / Path(argv[-1]).name)
    return [str(clip) if a.endswith("/source") else a for a in argv]


def _ffmpeg_alone(clip: Path) -> tuple[float, str]:
    with tempfile.TemporaryDirectory(prefix="convertly-bench-video-") as root:
        argv = converter_command(clip, Path(root))
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        return time.perf_counter() - start, " ".join(argv)


def video_job(corpus: Path) -> dict[str, Any]:
    clip = make_clip(corpus / "video")
    before, command = _ffmpeg_alone(clip)
    with server(1) as srv, srv.client() as client:
        start = time.perf_counter()
        with clip.open("rb") as fh:
            response = client.post("/api/jobs", files=[("files", (clip.name, fh, "video/mp4"))],
                                   data={"format": "mp4", "resize": "height",
                                         "resizeHeight": "720"})
        response.raise_for_status()
        job = wait_job(client, response.json()["jobId"])
        api = time.perf_counter() - start
    if job["status"] != "completed" or job["results"][0]["height"] != 720:
        raise RuntimeError(f"video job did not complete: {job}")
    after, _ = _ffmpeg_alone(clip)
    direct = (before + after) / 2
    return {
        "row": "video",
        "name": f"video: 30 s 1080p H.264 ({clip.stat().st_size / 1e6:.0f} MB) → 720p mp4, "
                "/api/jobs vs the same ffmpeg command alone",
        "ffmpegSeconds": round(direct, 2), "ffmpegRuns": [round(before, 2), round(after, 2)],
        "apiSeconds": round(api, 2), "ratio": round(direct / api, 3), "target": 0.97,
        "command": command,
    }
