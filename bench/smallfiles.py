"""Small-files row: 1,000 small PNGs → WebP in one `POST /api/jobs` (embedded, one conversion
process per core): files/s from the first byte sent to `completed`, the wall-clock phases
seen from outside, and a py-spy profile of a second, identical job split into phases."""

from __future__ import annotations

import datetime
import os
import time
from pathlib import Path
from typing import Any

from bench.corpus import make_pngs
from bench.harness import Server, group_cpu_seconds, multipart_files, server, wait_job
from bench.loops import png_to_webp, run_loop
from bench.profile import Recorder, classify

# Seconds between status requests should the server answer at once (this one holds each
# request until the job ends, `?wait=`): a client watching a big job, not a busy loop.
POLL = 0.25


def _ts(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) one process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _job(srv: Server, body: bytes, content_type: str, count: int) -> dict[str, Any]:
    cpu, api_cpu = group_cpu_seconds([srv.pid]), _process_cpu(srv.pid)
    with srv.client() as client:
        sent_at = time.time()
        start = time.perf_counter()
        response = client.post("/api/jobs", content=body,
                               headers={"Content-Type": content_type})
        response.raise_for_status()
        accepted = time.perf_counter() - start
        job = wait_job(client, response.json()["jobId"], poll=POLL)
        total = time.perf_counter() - start
    cpu, api_cpu = group_cpu_seconds([srv.pid]) - cpu, _process_cpu(srv.pid) - api_cpu
    if job["status"] != "completed" or job["completedFiles"] != count:
        raise RuntimeError(f"small-files job did not complete: {job['status']} "
                           f"{job['errorMessage']}")
    if any(r["format"] != "webp" or r["width"] != 160 for r in job["results"]):
        raise RuntimeError("small-files job gave unexpected outputs")
    created, started = _ts(job["createdAt"]), _ts(job["startedAt"])
    completed = _ts(job["completedAt"])
    return {"seconds": round(total, 2), "filesPerSecond": round(count / total, 1),
            "cpuMsPerFile": round(1000 * cpu / count, 2),
            "apiCpuMsPerFile": round(1000 * api_cpu / count, 2),
            "phases": {
                "uploadAndQueueSeconds": round(accepted, 2),
                "createdToFirstStartSeconds": round(started - created, 2),
                "firstStartToCompletedSeconds": round(completed - started, 2),
                "sentToCreatedSeconds": round(created - sent_at, 2),
            }}


def small_files(corpus: Path, profile_out: Path, count: int = 1000,
                profile: bool = True) -> dict[str, Any]:
    paths = make_pngs(corpus / "png-small", count)
    body, content_type = multipart_files(
        {"format": "webp"}, [(p.name, p.read_bytes(), "image/png") for p in paths])
    workers = os.cpu_count() or 1
    # The plain loop hands each process 25 files at a time: its fastest setting here.
    load_before = os.getloadavg()[0]
    looped = run_loop(png_to_webp, paths, workers, chunksize=25)
    loop = looped.rate
    with server(workers) as srv:
        warm_body, warm_type = multipart_files(
            {"format": "webp"}, [(p.name, p.read_bytes(), "image/png") for p in paths[:8]])
        _job(srv, warm_body, warm_type, 8)
        timed = _job(srv, body, content_type, count)
        load_after = os.getloadavg()[0]
        breakdown: dict[str, Any] = {}
        if profile:
            # The raw profile stays in bench/out for a closer look (speedscope, flamegraph).
            profile_out.parent.mkdir(parents=True, exist_ok=True)
            spy = Recorder(srv.pid, profile_out)
            try:
                _job(srv, body, content_type, count)
            finally:
                spy.stop()
            samples = classify(spy.lines())
            total = sum(samples.values()) or 1
            breakdown = {phase: round(100 * n / total, 1)
                         for phase, n in sorted(samples.items(), key=lambda kv: -kv[1])}
    return {
        "row": "small",
        "name": f"small files: {count} PNG (160×120) → WebP in one /api/jobs, embedded, "
                f"{workers} processes",
        "files": count,
        f"libraryLoop{workers}": round(loop, 1),
        **timed,
        "ratio": round(timed["filesPerSecond"] / loop, 3),
        "target": 0.8,
        # CPU per file, the API's and its conversion processes' against the loop's: what
        # the ratio would be were the cores Convertly's alone (steadier on a busy machine).
        "loopCpuMsPerFile": round(1000 * looped.cpu_seconds / count, 2),
        "cpuRatio": round(looped.cpu_seconds / count * 1000 / timed["cpuMsPerFile"], 3),
        "loadAverage": [round(load_before, 2), round(load_after, 2)],
        "cpuProfilePercent": breakdown,
        "rawProfile": str(profile_out) if profile else None,
    }
