"""A closed-loop HTTP/1.1 load generator on asyncio: `concurrency` keep-alive connections,
each sending its next request as soon as the previous answer is read, for a fixed time.

The client speaks HTTP/1.1 over asyncio streams itself (a request is prepared once as bytes;
an answer is its status line, headers and Content-Length body): on two shared cores an
httpx client would spend as much CPU per request as a small server does, and that CPU is
taken from the servers under test.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import uvloop


@dataclass(frozen=True)
class LoadResult:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: tuple[float, ...]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """The `q`-th percentile latency in ms (nearest rank), 0 without requests."""
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
        return ordered[rank]


def merge(results: list[LoadResult]) -> LoadResult:
    """Several windows of the same load as one result."""
    return LoadResult(results[0].concurrency, sum(r.requests for r in results),
                      sum(r.errors for r in results), sum(r.seconds for r in results),
                      tuple(ms for r in results for ms in r.latencies_ms))


def http_request(method: str, url: str, headers: dict[str, str] | None = None,
                 body: bytes = b"") -> bytes:
    """One HTTP/1.1 keep-alive request as bytes, ready to send again and again."""
    parts = urlsplit(url)
    lines = [f"{method} {parts.path or '/'}{'?' + parts.query if parts.query else ''} "
             "HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: bytes) -> tuple[int, bool]:
    """Send `request`, read the whole answer; (status, whether the server keeps the
    connection open)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    keep = True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
        elif name == b"transfer-encoding":
            raise RuntimeError("chunked answers are not supported by this load generator")
    await reader.readexactly(length)
    return status, keep


async def _load(url: str, request: bytes, concurrency: int, seconds: float,
                warmup: float) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    measure_from = start + warmup
    deadline = measure_from + seconds

    async def client() -> None:
        nonlocal errors
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while (sent := time.perf_counter()) < deadline:
            try:
                if conn is None:
                    conn = await asyncio.open_connection(host, port)
                status, keep = await _exchange(*conn, request)
                ok = status == 200
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                ok, keep = False, False
            if not keep and conn is not None:
                conn[1].close()
                conn = None
            done = time.perf_counter()
            if sent >= measure_from:
                if ok:
                    latencies.append((done - sent) * 1000)
                else:
                    errors += 1
        if conn is not None:
            conn[1].close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    # Requests sent before the deadline and answered after it count: the window closes when
    # the last one was answered.
    elapsed = time.perf_counter() - measure_from
    return LoadResult(concurrency, len(latencies), errors, elapsed, tuple(latencies))


def run_load(url: str, request: bytes, concurrency: int, seconds: float,
             warmup: float = 1.0) -> LoadResult:
    """Send `request` (see `http_request`) to the server at `url` over `concurrency`
    connections for `warmup` + `seconds`; requests sent during the warm-up are not counted."""
    return uvloop.run(_load(url, request, concurrency, seconds, warmup))
