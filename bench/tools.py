"""Media tools rows: a sync `thumbnail` (2000×1333 JPEG → 320-wide JPEG) and a sync
`transform` (640×640 attention crop, sharpen, WebP) through `POST /api/media/{tool}` at
concurrency 4, against the same libvips calls in a plain loop (bench/loops.py) in as many
processes as the server converts in. The loop runs before and after the API run; its rate is
the mean of the two (`run.around`), so drift on a shared machine weighs on both sides.

Beside the rates, CPU milliseconds per image: the loop's, and the server's split into the API
process (receiving, parsing and answering the request) and its conversion processes. On two
shared cores these say where a ratio below 1 comes from even when other work on the
machine moves the rates."""

from __future__ import annotations

import base64
import io
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from bench.corpus import make_photo
from bench.harness import TICKS, multipart_files, server
from bench.load import http_request, run_load
from bench.loops import (
    TOOL_QUALITY,
    TOOL_WIDTH,
    TRANSFORM_FIELDS,
    library_loop,
    photo_thumbnail,
    photo_transform,
)
from convertly.executors.libvips import threads_for

PROCESSES = 2
CONCURRENCY = 4
TARGET = 0.9
LOOP_FILES = 120
CPU_SAMPLES = 20


def _fetched(client: httpx.Client, answer: dict[str, Any]) -> bytes:
    url = answer["files"][0]["downloadUrl"]
    if url.startswith("data:"):
        return base64.b64decode(url.split(",", 1)[1])
    got = client.get(url)
    got.raise_for_status()
    return got.content


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _group(pgid: int) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    pids.append(int(entry.name))
            except OSError:  # gone meanwhile
                continue
    return pids


def _loop(loop: Callable[[tuple[str, str]], int], photo: Path) -> tuple[float, float]:
    """The plain loop's images per second, and its CPU milliseconds per image measured in
    this process (after a first call: imports and caches are not counted)."""
    import pyvips

    rate = library_loop(loop, [photo] * LOOP_FILES, PROCESSES)
    pyvips.concurrency_set(threads_for(PROCESSES))  # as in the loop's processes
    with tempfile.TemporaryDirectory(prefix="convertly-bench-cpu-") as tmp:
        job = (str(photo), f"{tmp}/out")
        loop(job)
        started = time.process_time()
        for _ in range(CPU_SAMPLES):
            loop(job)
        return rate, (time.process_time() - started) / CPU_SAMPLES * 1000


def _size(data: bytes) -> tuple[str | None, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as img:
        return img.format, img.size


def tools_rows(corpus: Path, seconds: float = 8.0) -> dict[str, Any]:
    photo = make_photo(corpus / "sync", 2000, 1333)
    cases: list[tuple[str, dict[str, str], Callable[[tuple[str, str]], int],
                      tuple[str, tuple[int, int]]]] = [
        ("thumbnail", {"width": str(TOOL_WIDTH), "format": "jpg",
                       "quality": str(TOOL_QUALITY)}, photo_thumbnail,
         ("JPEG", (TOOL_WIDTH, round(1333 * TOOL_WIDTH / 2000)))),
        ("transform", TRANSFORM_FIELDS, photo_transform, ("WEBP", (640, 640))),
    ]
    levels: list[dict[str, Any]] = []
    with server(PROCESSES) as ours, ours.client() as client:
        for tool, fields, loop, expected in cases:
            body, content_type = multipart_files(
                fields, [(photo.name, photo.read_bytes(), "image/jpeg")], field="file")
            headers = {"Authorization": f"Bearer {ours.key}", "Content-Type": content_type}
            # The answer is what the loop makes (checked once, outside the timed runs).
            answer = client.post(f"/api/media/{tool}", content=body, headers=headers)
            answer.raise_for_status()
            if _size(_fetched(client, answer.json())) != expected:
                raise RuntimeError(f"{tool}: the answer is not a {expected} image")
            request = http_request("POST", f"{ours.base}/api/media/{tool}", headers, body)
            before, loop_cpu = _loop(loop, photo)
            run_load(ours.base, request, CONCURRENCY, 1.0, warmup=0)  # workers warm
            pids = _group(os.getpgid(ours.pid))
            cpu = {pid: _cpu(pid) for pid in pids}
            started = time.perf_counter()
            api = run_load(ours.base, request, CONCURRENCY, seconds, warmup=0)
            spent = {pid: _cpu(pid) - cpu[pid] for pid in pids}
            after, _ = _loop(loop, photo)
            plain = 2 / (1 / before + 1 / after)
            per = 1000 / max(api.requests, 1)
            levels.append({
                "tool": tool, "apiPerSecond": round(api.rps, 1),
                "loopPerSecond": round(plain, 1), "p50Ms": round(api.percentile(50), 1),
                "errors": api.errors, "ratio": round(api.rps / plain, 2) if plain else None,
                "cpuMsPerImage": {
                    "loop": round(loop_cpu, 1),
                    "apiProcess": round(spent[ours.pid] * per, 1),
                    "conversionProcesses": round(
                        sum(v for pid, v in spent.items() if pid != ours.pid) * per, 1)},
                "seconds": round(time.perf_counter() - started, 1)})
    return {
        "row": "tools",
        "name": f"sync media tools on a 2000×1333 JPEG, concurrency {CONCURRENCY}, "
                f"{PROCESSES} processes",
        "levels": levels,
        "ratio": min(level["ratio"] or 0 for level in levels),
        "target": TARGET,
    }
