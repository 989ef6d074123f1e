"""`make bench`: Convertly side by side with the plain library loop, in one run.

Rows:
- batch images: 50 JPEGs of 12 MP → WebP `website` (fit inside 1920×1920, quality 82)
  through `POST /api/jobs` on a real `convertly serve` process — embedded mode, and
  distributed mode with 2 Celery workers on Redis + SeaweedFS (S3) — against the fastest plain
  library loop (pyvips `thumbnail` + `webpsave`) in 1 and 2 processes.
- dispatch: the per-file cost of a job of tiny files against a bare Celery no-op task.
- video: a 30 s 1080p clip → 720p mp4 through `POST /api/jobs` against the same ffmpeg
  command (captured from the converter) run alone.
- trace: a 12 MP photo → SVG, colour and mono: seconds and size.
The ratios are what count: both sides run on the same machine, minutes apart.

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

from bench.corpus import make_clip, make_jpegs

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
def server(workers: int, extra_env: dict[str, str] | None = None) -> Any:
    """A real `convertly serve` on a free loopback port with a fresh data dir."""
    data = Path(tempfile.mkdtemp(prefix="convertly-bench-"))
    env = {**os.environ, "CONVERTLY_DATA_DIR": str(data), "CONVERTLY_WORKERS": str(workers),
           "CONVERTLY_LOG_LEVEL": "warning", **(extra_env or {})}
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


@contextmanager
def cluster(workers: int) -> Any:
    """Redis, SeaweedFS (S3) and `workers` Celery workers of one process each, on loopback;
    yields the environment that points `convertly serve` at them."""
    from tests.infra import RedisServer, SeaweedS3

    root = Path(tempfile.mkdtemp(prefix="convertly-bench-cluster-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with RedisServer(root / "redis") as redis_server, SeaweedS3(root / "s3") as s3:
            env = {"CONVERTLY_BROKER_URL": redis_server.url,
                   "CONVERTLY_S3_ENDPOINT": s3.endpoint,
                   "CONVERTLY_S3_ACCESS_KEY": s3.access_key,
                   "CONVERTLY_S3_SECRET_KEY": s3.secret_key}
            for i in range(workers):
                wdir = root / f"worker-{i}"
                wdir.mkdir()
                log = (wdir / "worker.log").open("wb")
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "convertly", "worker", "--concurrency", "1"],
                    # Default log level: the "ready." line tells the worker is up.
                    env={**os.environ, **env, "CONVERTLY_DATA_DIR": str(wdir)}, cwd=wdir,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
                deadline = time.monotonic() + 60
                while b" ready." not in (wdir / "worker.log").read_bytes():
                    if time.monotonic() > deadline:
                        raise RuntimeError("worker did not start")
                    time.sleep(0.1)
            yield env
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(60)
        shutil.rmtree(root, ignore_errors=True)


def batch_distributed(count: int, workers: int = 2) -> dict[str, Any]:
    paths = make_jpegs(ROOT / "corpus" / "jpeg12mp", count)
    loop_n = library_loop(paths, workers)
    with cluster(workers) as env, server(1, env) as (base, key):
        api_job(base, key, paths[: workers * 2])
        api_rate, timing = api_job(base, key, paths)
    return {
        "name": f"batch: {count} × 12 MP JPEG → WebP website, /api/jobs (distributed, "
                f"{workers} Celery workers, Redis + S3)",
        "images": count,
        f"libraryLoop{workers}": round(loop_n, 2),
        "api": round(api_rate, 2),
        "ratioVsBestLoop": round(api_rate / loop_n, 3),
        "target": 0.90,
        **timing,
    }


def dispatch_overhead(files: int = 100) -> dict[str, Any]:
    """Per-file cost of a job of tiny files on one worker process, beside Celery's own cost
    for a no-op task on the same broker (both: all tasks queued at once, time to drain)."""
    import io

    import redis
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, "PNG")
    tiny = buf.getvalue()
    with cluster(1) as env:
        bench_env = {**os.environ, "BENCH_BROKER_URL": env["CONVERTLY_BROKER_URL"]}
        root = Path(tempfile.mkdtemp(prefix="convertly-bench-noop-"))
        log = (root / "noop.log").open("wb")
        noop_worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "bench.noop:app", "worker", "-Q", "noop",
             "-c", "1", "--without-mingle", "--without-gossip", "-l", "warning"],
            env=bench_env, cwd=Path(__file__).resolve().parents[1], stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        try:
            from bench.noop import app as noop_app

            noop_app.conf.broker_url = env["CONVERTLY_BROKER_URL"]
            client = redis.Redis.from_url(env["CONVERTLY_BROKER_URL"])
            client.set("bench:noop", 0)
            noop_app.signature("bench.noop", args=("bench:noop",), queue="noop").apply_async()
            while int(client.get("bench:noop") or 0) < 1:  # worker up and warm
                time.sleep(0.01)
            client.set("bench:noop", 0)
            start = time.perf_counter()
            for _ in range(files):
                noop_app.signature("bench.noop", args=("bench:noop",),
                                   queue="noop").apply_async()
            while int(client.get("bench:noop") or 0) < files:
                time.sleep(0.005)
            bare = (time.perf_counter() - start) / files
        finally:
            os.killpg(noop_worker.pid, signal.SIGTERM)
            noop_worker.wait(30)
            shutil.rmtree(root, ignore_errors=True)
        with server(1, env) as (base, key):
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=base, headers=headers, timeout=600) as http:
                def run(n: int) -> float:
                    uploads = [("files", (f"{i}.png", tiny, "image/png")) for i in range(n)]
                    job_id = http.post("/api/jobs", files=uploads,
                                       data={"format": "png"}).json()["jobId"]
                    start = time.perf_counter()
                    while http.get(f"/api/jobs/{job_id}").json()["status"] not in (
                            "completed", "failed"):
                        time.sleep(0.02)
                    return time.perf_counter() - start

                run(4)
                ours = run(files) / files
    work = _tiny_conversion_seconds(tiny)
    return {
        "name": f"dispatch: {files} tiny files in one job vs {files} no-op Celery tasks, "
                "1 worker process",
        "celeryNoopMs": round(bare * 1000, 2),
        "convertlyPerFileMs": round(ours * 1000, 2),
        "conversionMs": round(work * 1000, 2),
        "overheadMs": round((ours - bare - work) * 1000, 2),
    }


def video_job() -> dict[str, Any]:
    """A 30 s 1080p clip to 720p mp4 through /api/jobs (embedded, one worker process: ffmpeg
    uses both cores itself) against the very ffmpeg command the converter runs, run alone."""
    from convertly.converters import process
    from convertly.converters.registry import default_registry
    from convertly.models import FileSpec, OutputFormat, ResizePreset
    from convertly.settings import Settings
    from convertly.sniff import Kind, sniff_file

    clip = make_clip(ROOT / "corpus" / "video")
    spec = FileSpec(index=0, filename=clip.name, format=OutputFormat.MP4,
                    resize=ResizePreset.HEIGHT, resize_height=720)
    # The converter's own ffmpeg argv, captured from one in-process run.
    commands: list[tuple[str, ...]] = []
    real_run = process.run

    def recording_run(argv: Any, **kwargs: Any) -> Any:
        done = real_run(argv, **kwargs)
        commands.append(done.argv)
        return done

    process.run = recording_run
    try:
        with tempfile.TemporaryDirectory(prefix="convertly-bench-video-") as root:
            src = Path(root) / "source"
            shutil.copyfile(clip, src)
            source = sniff_file(src)
            default_registry().find(Kind(source.kind), OutputFormat.MP4).convert(
                src, source, spec, Path(root), Settings())
    finally:
        process.run = real_run
    argv = next(c for c in commands if Path(c[0]).name == "ffmpeg")
    out_index = len(argv) - 1
    with tempfile.TemporaryDirectory(prefix="convertly-bench-video-") as root:
        direct_argv = [*argv[:out_index], str(Path(root) / Path(argv[out_index]).name)]
        direct_argv = [str(clip) if a.endswith("/source") else a for a in direct_argv]
        start = time.perf_counter()
        subprocess.run(direct_argv, check=True, capture_output=True)
        direct = time.perf_counter() - start
    with server(1) as (base, key), httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=600) as client:
        start = time.perf_counter()
        with clip.open("rb") as fh:
            response = client.post("/api/jobs", files=[("files", (clip.name, fh, "video/mp4"))],
                                   data={"format": "mp4", "resize": "height",
                                         "resizeHeight": "720"})
        response.raise_for_status()
        job_id = response.json()["jobId"]
        while (job := client.get(f"/api/jobs/{job_id}").json())["status"] not in (
                "completed", "failed"):
            time.sleep(0.05)
        api = time.perf_counter() - start
    if job["status"] != "completed" or job["results"][0]["height"] != 720:
        raise RuntimeError(f"video job did not complete: {job}")
    return {
        "name": "30 s 1080p H.264 → 720p mp4 via /api/jobs vs the same ffmpeg command alone",
        "ffmpegSeconds": round(direct, 2), "apiSeconds": round(api, 2),
        "ratio": round(direct / api, 3), "target": 0.97,
        "command": " ".join(direct_argv),
    }


def trace_photo() -> dict[str, Any]:
    """Raster -> SVG of a 12 MP photo-like JPEG, colour (default compression) and mono."""
    from convertly.converters.registry import default_registry
    from convertly.models import FileSpec, OutputFormat
    from convertly.settings import Settings
    from convertly.sniff import Kind, sniff_file

    photo = make_jpegs(ROOT / "corpus" / "jpeg12mp", 1)[0]
    results = {}
    for mono in (False, True):
        with tempfile.TemporaryDirectory(prefix="convertly-bench-trace-") as root:
            src = Path(root) / "source"
            shutil.copyfile(photo, src)
            source = sniff_file(src)
            spec = FileSpec(index=0, filename=photo.name, format=OutputFormat.SVG, mono=mono)
            start = time.perf_counter()
            out = default_registry().find(Kind(source.kind), OutputFormat.SVG).convert(
                src, source, spec, Path(root), Settings())
            results[mono] = (time.perf_counter() - start, Path(out.path).stat().st_size)
    return {
        "name": "12 MP photo-like JPEG → SVG (vtracer), default compression",
        "traceSeconds": round(results[False][0], 2),
        "svgKiB": results[False][1] // 1024,
        "monoSeconds": round(results[True][0], 2),
        "monoKiB": results[True][1] // 1024,
    }


def _tiny_conversion_seconds(tiny: bytes, rounds: int = 200) -> float:
    """The conversion itself (sniff, decode, encode in a scratch directory), in process:
    the part of a file's time that is work, not dispatch."""
    from convertly.converters.registry import default_registry
    from convertly.models import FileSpec, OutputFormat
    from convertly.settings import Settings
    from convertly.sniff import Kind, sniff_file

    registry = default_registry()
    settings = Settings()
    spec = FileSpec(index=0, filename="0.png", format=OutputFormat.PNG)
    with tempfile.TemporaryDirectory(prefix="convertly-bench-tiny-") as root:
        def once() -> None:
            workdir = Path(tempfile.mkdtemp(dir=root))
            src = workdir / "source"
            src.write_bytes(tiny)
            source = sniff_file(src)
            registry.find(Kind(source.kind), OutputFormat.PNG).convert(
                src, source, spec, workdir, settings)
            shutil.rmtree(workdir)

        once()
        start = time.perf_counter()
        for _ in range(rounds):
            once()
        return (time.perf_counter() - start) / rounds


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
    parser.add_argument("--embedded-only", action="store_true",
                        help="skip the distributed rows (no Redis, no S3 needed)")
    parser.add_argument("--only", choices=["batch", "distributed", "dispatch", "video",
                                           "trace"], help="run one row")
    args = parser.parse_args()
    wanted = ({args.only} if args.only
              else {"batch", "distributed", "dispatch", "video", "trace"})
    if args.embedded_only:
        wanted -= {"distributed", "dispatch"}
    rows = []
    if "batch" in wanted:
        rows.append(batch_images(args.images))
    if "distributed" in wanted:
        rows.append(batch_distributed(args.images))
    if "dispatch" in wanted:
        rows.append(dispatch_overhead())
    if "video" in wanted:
        rows.append(video_job())
    if "trace" in wanted:
        rows.append(trace_photo())
    OUT.mkdir(exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
               "platform": platform.platform()}
    (OUT / "results.json").write_text(json.dumps({"machine": machine, "rows": rows},
                                                 indent=2))
    print(f"\nMachine: {machine['cpus']} CPUs, Python {machine['python']}, "
          f"{machine['platform']}\n")
    print("| benchmark | plain library loop | Convertly | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        if "api" in row:
            loops = ", ".join(f"{v} img/s ({k.removeprefix('libraryLoop')} proc)"
                              for k, v in row.items() if k.startswith("libraryLoop"))
            print(f"| {row['name']} | {loops} | {row['api']} img/s | "
                  f"{row['ratioVsBestLoop']} | ≥ {row['target']} |")
        elif "ffmpegSeconds" in row:
            print(f"| {row['name']} | ffmpeg alone {row['ffmpegSeconds']} s | "
                  f"{row['apiSeconds']} s | {row['ratio']} | ≥ {row['target']} |")
        elif "traceSeconds" in row:
            print(f"| {row['name']} | — | {row['traceSeconds']} s, {row['svgKiB']} KiB "
                  f"(mono {row['monoSeconds']} s, {row['monoKiB']} KiB) | — | seconds, "
                  "not minutes |")
        else:
            print(f"| {row['name']} | Celery no-op {row['celeryNoopMs']} ms/task | "
                  f"{row['convertlyPerFileMs']} ms/file, of which conversion "
                  f"{row['conversionMs']} ms | +{row['overheadMs']} ms | a few ms |")
    print(f"\nJSON: {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
