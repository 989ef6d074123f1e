"""Upload row: one 2 GB file, then 200 files of 1 MB, each in one `POST /api/jobs`:
MB/s from the first byte sent to the answer, and the API process's peak resident memory
while the body streams in. The client generates the body as it sends it (one 1 MiB block,
repeated), so neither side needs the file in memory; the server spools it to disk. The
server's data directory, uploads included, is removed when the row ends."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

from bench.harness import RssSampler, memory_kib, server, wait_job

BLOCK = 1024 * 1024
MB = 1_000_000


def multipart_stream(fields: dict[str, str], files: list[tuple[str, int]],
                     block: bytes) -> tuple[Iterator[bytes], int, str]:
    """A multipart/form-data body with `fields` and files of the given (name, size), whose
    bytes are `block` repeated; returns (chunks, total length, content type)."""
    boundary = uuid.uuid4().hex
    head = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
                    f'{v}\r\n'.encode() for k, v in fields.items())
    part_heads = [f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                  f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                  .encode() for name, _ in files]
    tail = f"--{boundary}--\r\n".encode()
    total = (len(head) + sum(len(h) + size + 2 for h, (_, size) in zip(part_heads, files,
                                                                       strict=True))
             + len(tail))

    def chunks() -> Iterator[bytes]:
        yield head
        for part_head, (_, size) in zip(part_heads, files, strict=True):
            yield part_head
            left = size
            while left > 0:
                n = min(left, len(block))
                yield block if n == len(block) else block[:n]
                left -= n
            yield b"\r\n"
        yield tail

    return chunks(), total, f"multipart/form-data; boundary={boundary}"


def _upload(client: Any, pid: int, files: list[tuple[str, int]]) -> dict[str, Any]:
    chunks, total, content_type = multipart_stream({"format": "webp"}, files,
                                                   os.urandom(BLOCK))
    with RssSampler(pid) as rss:
        start = time.perf_counter()
        response = client.post("/api/jobs", content=chunks,
                               headers={"Content-Type": content_type,
                                        "Content-Length": str(total)})
        elapsed = time.perf_counter() - start
    response.raise_for_status()
    job = wait_job(client, response.json()["jobId"], poll=0.2)
    # Random bytes are no media: each file fails fast as UNSUPPORTED_MEDIA once the worker
    # has read it from storage, and its recorded size shows that every byte landed.
    landed = [(r["originalSize"], r["errorCode"]) for r in job["results"]]
    if landed != [(size, "UNSUPPORTED_MEDIA") for _, size in files]:
        raise RuntimeError(f"upload did not land intact: {job['results'][:1]}")
    return {"mb": round(total / MB), "seconds": round(elapsed, 2),
            "mbPerSecond": round(total / MB / elapsed, 1), "peakRssMiB": rss.peak_kib // 1024}


def upload(big: int = 2_000_000_000, small: int = 200, small_size: int = MB) -> dict[str, Any]:
    """Both uploads against one embedded server with one conversion process."""
    with server(1) as srv, srv.client() as client:
        idle = memory_kib(srv.pid) // 1024
        one = _upload(client, srv.pid, [("big.bin", big)])
        many = _upload(client, srv.pid, [(f"{i}.bin", small_size) for i in range(small)])
        lifetime_peak = memory_kib(srv.pid, "VmHWM") // 1024
    return {
        "row": "upload",
        "name": f"upload through /api/jobs: one {big / 1e9:g} GB file; {small} files of "
                f"{small_size / MB:g} MB",
        "idleRssMiB": idle,
        "oneFile": one,
        "manyFiles": many,
        "apiPeakRssMiB": lifetime_peak,
        "targetMBps": 100,
        "targetRssMiB": 150,
    }
