"""`make bench`: Convertly side by side with the plain libraries and a peer server, in one run.

Rows (`--only NAME`, repeatable; the default set is marked *):
- batch*: 50 JPEGs of 12 MP → WebP `website` (fit inside 1920×1920, quality 82) through
  `POST /api/jobs` on a real `convertly serve` process, embedded mode, against the fastest
  plain library loop in 1 and 2 processes.
- distributed*: the same with 2 Celery workers on Redis + S3, all on this machine: S3 is
  nanio, a small server doing about MinIO's work per byte (distributed-seaweedfs: SeaweedFS,
  which passes each object through gateway, filer and volume server and hashes it four
  times); skipped without redis-server or with --embedded-only.
- sync*: a 2000×1333 JPEG → 512-wide JPEG through `POST /api/convert` at concurrency 1, 4
  and 16 beside thumbor (Pillow engine) doing the same resize (bench/sync.py).
- tools*: a sync `thumbnail` (2000×1333 JPEG → 320 px) and `transform` through
  `POST /api/media/{tool}` at concurrency 4 against the same libvips calls in a plain loop
  (bench/tools.py).
- upload*: one 2 GB file and 200 files of 1 MB: MB/s and the API process's peak RSS
  (bench/upload.py).
- video*: a 30 s 1080p clip → 720p mp4 against the same ffmpeg command alone (bench/video.py).
- streams*: a 30 s 1080p clip → the `standard` ladder (HLS + DASH) through
  `POST /api/video/streams` against the same ffmpeg commands alone (bench/streams.py).
- streams-workers: that stream in distributed mode with 1 and with 2 media workers.
- small*: 1,000 small PNGs → WebP in one job: files/s beside the plain loop, and where the
  time goes (bench/smallfiles.py).
- dispatch: the per-file cost of a job of tiny files against a bare Celery no-op task.
- trace: a 12 MP photo → SVG, colour and mono: seconds and size.
The ratios are what count: both sides run on the same machine in the same run.

Writes bench/out/results.json and prints a markdown table (bench/table.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.corpus import make_jpegs
from bench.harness import CpuMeter, Server, cluster, server, wait_job
from bench.loops import jpeg_to_webp_website, library_loop
from bench.smallfiles import small_files
from bench.streams import stream_ladder, stream_workers
from bench.sync import sync_resize
from bench.table import render
from bench.tools import tools_rows
from bench.upload import upload
from bench.video import video_job

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out"


def api_job(srv: Server, paths: list[Path]) -> tuple[float, dict[str, Any]]:
    """Images per second for one job from the first byte sent to `completed`. The upload is
    the README's `curl -F` (a C client: on a 2-core machine a Python client's CPU would be
    taken from the conversions), then the job is awaited as any client does."""
    argv = ["curl", "--silent", "--show-error", "--fail-with-body", "--header", "Expect:",
            "--header", f"Authorization: Bearer {srv.key}",
            "--form", "format=webp", "--form", "resize=website"]
    for path in paths:
        argv += ["--form", f"files=@{path};type=image/jpeg"]
    argv.append(f"{srv.base}/api/jobs")
    with srv.client() as client:
        start = time.perf_counter()
        sent = subprocess.run(argv, capture_output=True, check=False)
        if sent.returncode:
            raise RuntimeError(f"upload failed: {sent.stderr.decode()} {sent.stdout.decode()}")
        accepted = time.perf_counter() - start
        job = wait_job(client, json.loads(sent.stdout)["jobId"])
        elapsed = time.perf_counter() - start
    if job["status"] != "completed" or job["completedFiles"] != len(paths):
        raise RuntimeError(f"job did not complete: {job['status']} {job['errorMessage']}")
    return len(paths) / elapsed, {"uploadSeconds": round(accepted, 2),
                                  "totalSeconds": round(elapsed, 2)}


def around(before: float, after: float) -> float:
    """The loop's rate run before and after the API run, as one rate (over the mean time),
    so drift on a shared machine weighs on both sides alike."""
    return 2 / (1 / before + 1 / after)


def batch_distributed(count: int, workers: int = 2, s3_server: str = "nanio",
                      rounds: int = 2) -> dict[str, Any]:
    """The batch row on the distributed stack, every part on this machine. The co-located S3
    server's CPU counts against Convertly here (in production it is another host). The loop
    and the job alternate (loop, job, loop, ... loop) for `rounds` jobs: each job is set
    against the loops on either side of it, and the row's ratio is the mean of those. For
    the last job, `cpuSeconds` says where the two cores went while it ran."""
    paths = make_jpegs(ROOT / "corpus" / "jpeg12mp", count)
    loops = [library_loop(jpeg_to_webp_website, paths, workers)]
    rates: list[float] = []
    with cluster(workers, s3_server) as parts, server(1, parts.env) as srv:
        api_job(srv, paths[: workers * 2])
        for _ in range(rounds):
            with CpuMeter({**parts.groups, "API": [srv.pid]}) as cpu:
                api_rate, timing = api_job(srv, paths)
            rates.append(api_rate)
            loops.append(library_loop(jpeg_to_webp_website, paths, workers))
    ratios = [rate / around(before, after)
              for rate, before, after in zip(rates, loops, loops[1:], strict=False)]
    return {
        "row": "distributed",
        "loopRuns": [round(rate, 2) for rate in loops],
        "apiRuns": [round(rate, 2) for rate in rates],
        "ratios": [round(ratio, 3) for ratio in ratios],
        "name": f"batch: {count} × 12 MP JPEG → WebP website, /api/jobs (distributed, "
                f"{workers} Celery workers, Redis + S3 on {s3_server})",
        "s3Server": s3_server,
        "images": count,
        f"libraryLoop{workers}": round(sum(loops) / len(loops), 2),
        "api": round(sum(rates) / len(rates), 2),
        "ratioVsBestLoop": round(sum(ratios) / len(ratios), 3),
        "target": 0.90,
        "cores": os.cpu_count() or 1,
        "cpuSeconds": cpu.seconds,
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
    with cluster(1) as parts:
        env = parts.env
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
        with server(1, env) as srv, srv.client() as http:
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
            commands = client.info("stats")["total_commands_processed"]
            ours = run(files) / files
            # Redis commands per file, the job's and what polls Redis meanwhile (the API's
            # status requests, Celery's own polling): round trips, whatever the load.
            per_file = (client.info("stats")["total_commands_processed"] - commands) / files
    work = _tiny_conversion_seconds(tiny)
    return {
        "row": "dispatch",
        "name": f"dispatch: {files} tiny files in one job vs {files} no-op Celery tasks, "
                "1 worker process",
        "celeryNoopMs": round(bare * 1000, 2),
        "convertlyPerFileMs": round(ours * 1000, 2),
        "conversionMs": round(work * 1000, 2),
        "overheadMs": round((ours - bare - work) * 1000, 2),
        "redisCommandsPerFile": round(per_file, 1),
    }


def trace_photo() -> dict[str, Any]:
    """Raster -> SVG of a 12 MP photo-like JPEG, colour (default compression) and mono."""
    from convertly.converters.builtin import default_registry
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
        "row": "trace",
        "name": "12 MP photo-like JPEG → SVG (vtracer), default compression",
        "traceSeconds": round(results[False][0], 2),
        "svgKiB": results[False][1] // 1024,
        "monoSeconds": round(results[True][0], 2),
        "monoKiB": results[True][1] // 1024,
    }


def _tiny_conversion_seconds(tiny: bytes, rounds: int = 200) -> float:
    """The conversion itself (sniff, decode, encode in a scratch directory), in process:
    the part of a file's time that is work, not dispatch."""
    from convertly.converters.builtin import default_registry
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
    loop_1 = library_loop(jpeg_to_webp_website, paths, 1)
    before = library_loop(jpeg_to_webp_website, paths, workers)
    with server(workers) as srv:
        api_job(srv, paths[: workers * 2])  # let the workers load their libraries
        api_rate, timing = api_job(srv, paths)
    after = library_loop(jpeg_to_webp_website, paths, workers)
    loop_n = around(before, after)
    return {
        "row": "batch",
        "loopRuns": [round(before, 2), round(after, 2)],
        "name": f"batch: {count} × 12 MP JPEG → WebP website, /api/jobs (embedded)",
        "images": count,
        "libraryLoop1": round(loop_1, 2),
        f"libraryLoop{workers}": round(loop_n, 2),
        "api": round(api_rate, 2),
        "ratioVsBestLoop": round(api_rate / max(loop_1, loop_n), 3),
        "target": 0.90,
        **timing,
    }


ROWS = ("batch", "distributed", "distributed-seaweedfs", "sync", "tools", "upload", "video",
        "streams", "streams-workers", "small", "dispatch", "trace")
DEFAULT_ROWS = ("batch", "distributed", "distributed-seaweedfs", "sync", "tools", "upload",
                "video", "streams", "small")


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory and Python of this machine, for the record."""
    model = next((line.split(":", 1)[1].strip()
                  for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    mem_kib = next(int(line.split()[1])
                   for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    return {"cpus": os.cpu_count(), "cpuModel": model, "memGiB": round(mem_kib / 1024**2, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--embedded-only", action="store_true",
                        help="skip the distributed rows (no Redis, no S3 needed)")
    parser.add_argument("--only", action="append", choices=ROWS,
                        help="run this row (repeatable); default: " + ", ".join(DEFAULT_ROWS))
    parser.add_argument("--sync-seconds", type=float, default=8.0,
                        help="measured seconds per server and concurrency in the sync row")
    parser.add_argument("--no-profile", action="store_true",
                        help="skip the py-spy profile of the small-files row")
    args = parser.parse_args()
    wanted = list(args.only or DEFAULT_ROWS)
    if args.embedded_only or (shutil.which("redis-server") is None and not args.only):
        wanted = [w for w in wanted
                  if not w.startswith(("distributed", "dispatch", "streams-workers"))]
    corpus = ROOT / "corpus"
    runners = {
        "batch": lambda: batch_images(args.images),
        "distributed": lambda: batch_distributed(args.images),
        "distributed-seaweedfs": lambda: batch_distributed(args.images, s3_server="seaweedfs",
                                                           rounds=1),
        "sync": lambda: sync_resize(corpus, seconds=args.sync_seconds),
        "tools": lambda: tools_rows(corpus, seconds=args.sync_seconds),
        "upload": upload,
        "video": lambda: video_job(corpus),
        "streams": lambda: stream_ladder(corpus),
        "streams-workers": lambda: stream_workers(corpus),
        "small": lambda: small_files(corpus, OUT / "profile-small.txt",
                                     profile=not args.no_profile),
        "dispatch": dispatch_overhead,
        "trace": trace_photo,
    }
    rows = []
    for name in wanted:
        start = time.perf_counter()
        rows.append({**runners[name](), "benchSeconds": round(time.perf_counter() - start, 1)})
        print(f"{name}: done in {rows[-1]['benchSeconds']} s", file=sys.stderr, flush=True)
    OUT.mkdir(exist_ok=True)
    info = machine()
    (OUT / "results.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=2))
    print(f"\nMachine: {info['cpus']} cores ({info['cpuModel']}), {info['memGiB']} GiB RAM, "
          f"Python {info['python']}, {info['platform']}\n")
    print(render(rows))
    print(f"\nJSON: {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
