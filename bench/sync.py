"""Sync resize row: a 2000×1333 JPEG → 512-wide JPEG through `POST /api/convert`, beside
thumbor (Pillow engine) doing the same resize, both on loopback, driven by the same
closed-loop load generator at several concurrencies."""

from __future__ import annotations

import base64
import io
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from bench import peers
from bench.corpus import make_photo
from bench.harness import free_port, multipart_files, server, stop, wait_http
from bench.load import LoadResult, http_request, merge, run_load

WIDTH = 512
QUALITY = 82
PROCESSES = 2  # thumbor processes; Convertly's conversion processes


@contextmanager
def thumbor(root: Path, processes: int) -> Iterator[str]:
    """thumbor serving files under `root` on a free loopback port; yields its base URL.
    Same output as Convertly's: baseline JPEG at QUALITY, no caching of sources or
    results, so every request decodes, resizes and encodes."""
    conf = Path(tempfile.mkdtemp(prefix="convertly-bench-thumbor-")) / "thumbor.conf"
    conf.write_text(
        "LOADER = 'thumbor.loaders.file_loader'\n"
        f"FILE_LOADER_ROOT_PATH = {str(root)!r}\n"
        "STORAGE = 'thumbor.storages.no_storage'\n"
        "RESULT_STORAGE = None\n"
        "ENGINE = 'thumbor.engines.pil'\n"
        f"QUALITY = {QUALITY}\n"
        "PROGRESSIVE_JPEG = False\n"
        "ALLOW_UNSAFE_URL = True\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [str(peers.thumbor()), "--ip", "127.0.0.1", "--port", str(port), "--conf",
         str(conf), "--processes", str(processes), "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthcheck", proc, "thumbor")
        yield base
    finally:
        stop(proc, timeout=10)
        conf.unlink()
        conf.parent.rmdir()


def _width_of(jpeg: bytes) -> int:
    with Image.open(io.BytesIO(jpeg)) as img:
        if img.format != "JPEG":
            raise RuntimeError(f"expected a JPEG, got {img.format}")
        return img.width


def _summary(result: LoadResult) -> dict[str, Any]:
    return {"rps": round(result.rps, 1), "p50Ms": round(result.percentile(50), 1),
            "p95Ms": round(result.percentile(95), 1), "requests": result.requests,
            "errors": result.errors}


def sync_resize(corpus: Path, concurrencies: tuple[int, ...] = (1, 4, 16),
                seconds: float = 8.0, rounds: int = 4) -> dict[str, Any]:
    photo = make_photo(corpus / "sync", 2000, 1333)
    body, content_type = multipart_files(
        {"format": "jpg", "resize": "width", "resizeWidth": str(WIDTH),
         "compression": str(QUALITY)}, [(photo.name, photo.read_bytes(), "image/jpeg")])
    thumbor_path = f"/unsafe/{WIDTH}x0/{photo.name}"
    levels: list[dict[str, Any]] = []
    with server(PROCESSES) as ours, thumbor(photo.parent, PROCESSES) as peer:
        headers = {"Authorization": f"Bearer {ours.key}", "Content-Type": content_type}
        convertly = http_request("POST", f"{ours.base}/api/convert", headers, body)
        thumbor_get = http_request("GET", f"{peer}{thumbor_path}")

        # Both give back a 512-wide JPEG (checked once, outside the timed runs).
        answer = httpx.post(f"{ours.base}/api/convert", content=body, headers=headers)
        answer.raise_for_status()
        url = answer.json()["files"][0]["downloadUrl"]
        if _width_of(base64.b64decode(url.split(",", 1)[1])) != WIDTH:
            raise RuntimeError("Convertly's output is not 512 wide")
        if _width_of(httpx.get(f"{peer}{thumbor_path}").content) != WIDTH:
            raise RuntimeError("thumbor's output is not 512 wide")
        for concurrency in concurrencies:
            # Short windows, alternating A B B A ..., so drift (other work on this
            # machine) hits both servers alike.
            theirs: list[LoadResult] = []
            mine: list[LoadResult] = []
            for i in range(rounds):
                pair = [(theirs, peer, thumbor_get), (mine, ours.base, convertly)]
                for results, url, request in pair if i % 2 == 0 else pair[::-1]:
                    results.append(run_load(url, request, concurrency, seconds / rounds,
                                            warmup=0.5))
            a, b = merge(mine), merge(theirs)
            levels.append({"concurrency": concurrency, "convertly": _summary(a),
                           "thumbor": _summary(b),
                           "ratio": round(a.rps / b.rps, 2) if b.rps else None})
    return {
        "row": "sync",
        "name": f"sync resize: 2000×1333 JPEG → {WIDTH}-wide JPEG q{QUALITY}, /api/convert "
                f"vs thumbor 7.8 (Pillow engine), {PROCESSES} processes each",
        "levels": levels,
        "ratio": min(level["ratio"] or 0 for level in levels),
        "target": 1.5,
    }
