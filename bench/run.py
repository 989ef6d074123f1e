"""`make bench`: Convertly side by side with the plain library loop, in one run.

Row "batch images": 50 JPEGs of 12 MP → WebP `website` (fit inside 1920×1920, quality 82)
through `POST /api/jobs` on a real `convertly serve` process (embedded mode), against the
fastest plain library loop (pyvips `thumbnail` + `webpsave`) in 1 and 2 processes.
The ratio is what counts: both sides run on the same machine, minutes apart.

Writes bench/out/results.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.corpus import make_jpegs

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out"


def _convert_one(args: tuple[str, str]) -> int:
    import pyvips

    src, dst = args
    image = pyvips.Image.thumbnail(src, 1920, height=1920, size="down")
    image.webpsave(dst, Q=82)
    return os.path.getsize(dst)


def library_loop(paths: list[Path], processes: int) -> float:
    """Images per second of the plain pyvips loop with `processes` processes."""
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(str(p), f"{tmp}/{i}.webp") for i, p in enumerate(paths)]
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(processes, mp_context=ctx) as pool:
            list(pool.map(_convert_one, jobs[:processes]))  # warm up the processes
            start = time.perf_counter()
            list(pool.map(_convert_one, jobs))
            elapsed = time.perf_counter() - start
    return len(paths) / elapsed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(workers: int) -> Any:
    """A real `convertly serve` on a free loopback port with a fresh data dir."""
    data = Path(tempfile.mkdtemp(prefix="convertly-bench-"))
    env = {**os.environ, "CONVERTLY_DATA_DIR": str(data), "CONVERTLY_WORKERS": str(workers),
           "CONVERTLY_LOG_LEVEL": "warning"}
    cli = [sys.executable, "-m", "convertly"]
    key = subprocess.run([*cli, "keys", "create", "--name", "bench"], env=env, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    port = _free_port()
    proc = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("convertly serve did not start")
            time.sleep(0.1)
        yield base, key
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data, ignore_errors=True)


def api_job(base: str, key: str, paths: list[Path]) -> tuple[float, dict[str, Any]]:
    """Images per second for one job from the first byte sent to `completed`."""
    headers = {"Authorization": f"Bearer {key}"}
    with ExitStack() as stack, httpx.Client(base_url=base, headers=headers,
                                            timeout=600) as client:
        files = [("files", (p.name, stack.enter_context(p.open("rb")), "image/jpeg"))
                 for p in paths]
        start = time.perf_counter()
        response = client.post("/api/jobs", files=files,
                               data={"format": "webp", "resize": "website"})
        response.raise_for_status()
        accepted = time.perf_counter() - start
        job_id = response.json()["jobId"]
        while True:
            job = client.get(f"/api/jobs/{job_id}").json()
            if job["status"] in ("completed", "failed"):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
    if job["status"] != "completed" or job["completedFiles"] != len(paths):
        raise RuntimeError(f"job did not complete: {job['status']} {job['errorMessage']}")
    return len(paths) / elapsed, {"uploadSeconds": round(accepted, 2),
                                  "totalSeconds": round(elapsed, 2)}


def batch_images(count: int) -> dict[str, Any]:
    paths = make_jpegs(ROOT / "corpus" / "jpeg12mp", count)
    workers = os.cpu_count() or 1
    loop_1 = library_loop(paths, 1)
    loop_n = library_loop(paths, workers)
    with server(workers) as (base, key):
        api_job(base, key, paths[: workers * 2])  # let the workers load their libraries
        api_rate, timing = api_job(base, key, paths)
    return {
        "name": f"batch: {count} × 12 MP JPEG → WebP website, /api/jobs (embedded)",
        "images": count,
        "libraryLoop1": round(loop_1, 2),
        f"libraryLoop{workers}": round(loop_n, 2),
        "api": round(api_rate, 2),
        "ratioVsBestLoop": round(api_rate / max(loop_1, loop_n), 3),
        "target": 0.90,
        **timing,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=50)
    args = parser.parse_args()
    rows = [batch_images(args.images)]
    OUT.mkdir(exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
               "platform": platform.platform()}
    (OUT / "results.json").write_text(json.dumps({"machine": machine, "rows": rows},
                                                 indent=2))
    print(f"\nMachine: {machine['cpus']} CPUs, Python {machine['python']}, "
          f"{machine['platform']}\n")
    print("| benchmark | library loop, 1 proc | library loop, all cores | Convertly | ratio "
          "| target |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        best = [v for k, v in row.items() if k.startswith("libraryLoop") and k != "libraryLoop1"]
        print(f"| {row['name']} | {row['libraryLoop1']} img/s | {best[0]} img/s | "
              f"{row['api']} img/s | {row['ratioVsBestLoop']} | ≥ {row['target']} |")
    print(f"\nJSON: {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
