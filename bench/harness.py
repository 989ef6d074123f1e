"""Servers the benchmarks talk to: a real `convertly serve` process on a loopback port, and
the Redis + S3 + Celery cluster of distributed mode. Plus the bits every row needs: free
ports, waiting for a job, the resident memory of a process."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from convertly.executors.libvips import threads_for

# Generous limits, so the upload and small-file rows fit in one request.
BENCH_ENV = {
    "CONVERTLY_MAX_FILES": "1000",
    "CONVERTLY_MAX_FILE_BYTES": str(3 * 1024**3),
    "CONVERTLY_MAX_REQUEST_BYTES": str(3 * 1024**3),
    "CONVERTLY_MAX_QUEUED_FILES": "10000",
    # Rows measure conversion throughput, not the per-key rate limit (25 a second by
    # default): under it a fast row would be answered 429 for most of its requests.
    "CONVERTLY_RATE_LIMIT": "0",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, proc: subprocess.Popen[Any], what: str, timeout: float = 60) -> None:
    """Poll `url` until it answers 200; fail when `proc` exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.1)


def stop(proc: subprocess.Popen[Any], timeout: float = 60) -> None:
    """SIGTERM the process `proc` (SIGKILL after `timeout` seconds), then SIGKILL whatever
    is left of its process group (children it did not reap)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@dataclass(frozen=True)
class Server:
    """A running `convertly serve`: its base URL, an API key and the API process id."""

    base: str
    key: str
    pid: int

    def client(self, timeout: float = 600) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=timeout,
                            headers={"Authorization": f"Bearer {self.key}"})


@contextmanager
def server(workers: int, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """A real `convertly serve` on a free loopback port with a fresh data dir."""
    data = Path(tempfile.mkdtemp(prefix="convertly-bench-"))
    env = {**os.environ, **BENCH_ENV, "CONVERTLY_DATA_DIR": str(data),
           "CONVERTLY_WORKERS": str(workers), "CONVERTLY_LOG_LEVEL": "warning",
           **(extra_env or {})}
    cli = [sys.executable, "-m", "convertly"]
    key = subprocess.run([*cli, "keys", "create", "--name", "bench"], env=env, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    port = free_port()
    proc = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz", proc, "convertly serve")
        yield Server(base, key, proc.pid)
    finally:
        stop(proc)
        shutil.rmtree(data, ignore_errors=True)


def multipart_files(fields: dict[str, str], files: list[tuple[str, bytes, str]], *,
                    field: str = "files") -> tuple[bytes, str]:
    """A multipart/form-data body with text `fields` and (name, data, content type) files
    in the `field` field; returns (body, content type header)."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
             .encode() for k, v in fields.items()]
    for name, data, content_type in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
                     f'filename="{name}"\r\nContent-Type: {content_type}\r\n\r\n'.encode())
        parts.append(data)
        parts.append(b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def wait_job(client: httpx.Client, job_id: str, poll: float = 0.1,
             wait: float = 30.0) -> dict[str, Any]:
    """Wait for a job as a client would, `wait` seconds per request (the server answers as
    soon as it is completed or failed); return its last body. A server that answers at once
    (one without `?wait=`) is asked again every `poll` seconds."""
    while True:
        asked = time.monotonic()
        job: dict[str, Any] = client.get(f"/api/jobs/{job_id}",
                                          params={"wait": wait}).json()
        if job["status"] in ("completed", "failed"):
            return job
        if time.monotonic() - asked < wait / 2:
            time.sleep(poll)


S3_SERVERS = ("nanio", "seaweedfs")
TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(groups: Iterable[int]) -> float:
    """CPU seconds (user + system) used so far by the live processes of these process
    groups (a server started in its own session, with its children)."""
    wanted = set(groups)
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) in wanted:
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def idle_seconds() -> float:
    """Core-seconds this machine's CPUs have spent idle (or waiting for I/O) since boot."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(fields[4]) + int(fields[5])) / TICKS


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """Where the machine's CPU went during a `with` block: the seconds each named set of
    process groups used, what this process's reaped children used ("client": the curl
    upload), and the cores' idle time; `seconds` holds them once the block ends."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.seconds: dict[str, float] = {}
        self._start: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        now = {name: group_cpu_seconds(pgids) for name, pgids in self.groups.items()}
        now["client"] = _children_cpu_seconds()
        now["idle"] = idle_seconds()
        return now

    def __enter__(self) -> CpuMeter:
        self._start = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._now()
        self.seconds = {k: round(end[k] - self._start[k], 2) for k in end}


@dataclass(frozen=True)
class Cluster:
    """The environment that points `convertly serve` at a running cluster, and the process
    groups of its parts (for CPU accounting)."""

    env: dict[str, str]
    groups: dict[str, list[int]] = field(default_factory=dict)


@contextmanager
def cluster(workers: int, s3_server: str = "nanio") -> Iterator[Cluster]:
    """Redis, an S3 server (`s3_server`: nanio or seaweedfs) and `workers` Celery workers
    of one process each, on loopback; yields their Cluster. As deploy/compose.yaml has
    them, Redis keeps its append-only file (fsync every second) and upload bodies go to S3
    unsigned."""
    from tests.infra import NanioS3, RedisServer, SeaweedS3

    root = Path(tempfile.mkdtemp(prefix="convertly-bench-cluster-"))
    procs: list[subprocess.Popen[bytes]] = []
    s3_class = {"nanio": NanioS3, "seaweedfs": SeaweedS3}[s3_server]
    try:
        with RedisServer(root / "redis", appendfsync="everysec") as redis_server, \
                s3_class(root / "s3") as s3:
            # The workers share this host's cores, as an operator running several on one
            # host would tell them: libvips threads = cores ÷ all their processes.
            threads = str(threads_for(workers))
            env = {"CONVERTLY_BROKER_URL": redis_server.url,
                   "CONVERTLY_S3_ENDPOINT": s3.endpoint,
                   "CONVERTLY_S3_ACCESS_KEY": s3.access_key,
                   "CONVERTLY_S3_SECRET_KEY": s3.secret_key,
                   "CONVERTLY_S3_SIGN_PAYLOAD": "false"}
            for i in range(workers):
                wdir = root / f"worker-{i}"
                wdir.mkdir()
                log = (wdir / "worker.log").open("wb")
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "convertly", "worker", "--concurrency", "1"],
                    # Default log level: the "ready." line tells the worker is up.
                    env={**os.environ, **env, "CONVERTLY_DATA_DIR": str(wdir),
                         "VIPS_CONCURRENCY": threads},
                    cwd=wdir,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
                deadline = time.monotonic() + 60
                while b" ready." not in (wdir / "worker.log").read_bytes():
                    if time.monotonic() > deadline:
                        raise RuntimeError("worker did not start")
                    time.sleep(0.1)
            yield Cluster(env, {"conversion workers": [p.pid for p in procs],
                                "S3 server": [s3.pid or 0], "Redis": [redis_server.pid or 0]})
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(60)
        shutil.rmtree(root, ignore_errors=True)


def memory_kib(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of a live process from /proc/PID/status, in KiB (VmRSS, VmHWM...)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


class RssSampler:
    """Samples a process's resident memory every `interval` seconds in a thread; `peak`
    is the highest VmRSS seen between start and stop (the kernel's VmHWM covers the
    process's whole life, start-up included)."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid, self.interval = pid, interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, memory_kib(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self.peak_kib = memory_kib(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, memory_kib(self.pid))
