"""The app under the ASGI servers deployments run, as real processes: `uvicorn --factory`,
gunicorn with uvicorn's worker class (both calling `create_app()` with no argument) and
`convertly serve --workers N`; plus `convertly serve`'s refusals, `convertly --version` and
`keys list --json`."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import httpx2
import psutil
import pytest
from starlette.testclient import TestClient

from convertly.app import create_app
from convertly.datadirlock import DataDirBusyError
from convertly.server_commands import EMBEDDED_WORKERS
from convertly.settings import Settings
from tests import images
from tests.api.test_cli import SERVE_TIMEOUT, _convertly, _env, _free_port, run_cli
from tests.cluster import Cluster
from tests.infra import terminate

# gunicorn 27 opens a control socket at one path per user: tests running at once would
# share it.
GUNICORN_QUIET = ("--no-control-socket",)


def _bin(name: str) -> str:
    path = Path(sys.executable).parent / name
    assert path.is_file(), f"{path} is missing: run `make setup` (the dev dependencies)"
    return str(path)


@contextmanager
def _running(argv: list[str], env: dict[str, str], cwd: Path, base: str,
             verify: ssl.SSLContext | bool = True) -> Iterator[subprocess.Popen[bytes]]:
    """`argv` started and answering /livez; stopped with SIGTERM afterwards (it must exit
    by itself: status 0, or killed by the SIGTERM uvicorn raises again once it has shut
    down cleanly)."""
    log = cwd / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT
        while True:
            assert process.poll() is None, f"{argv[0]} exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"not answering: {log.read_text()}"
            try:
                if httpx2.get(f"{base}/livez", timeout=2, verify=verify).status_code == 200:
                    break
            except httpx2.TransportError:
                time.sleep(0.1)
        yield process
    finally:
        stopped = terminate(process)
    assert stopped and process.returncode in (0, -signal.SIGTERM), log.read_text()
    assert "Traceback" not in log.read_text(), log.read_text()


def _key(data_dir: Path) -> str:
    created = run_cli(data_dir, "keys", "create", "--name", "server-test")
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def _converts(base: str, key: str) -> None:
    response = httpx2.post(f"{base}/api/convert", headers={"Authorization": f"Bearer {key}"},
                           files=[("files", ("photo.jpg", images.jpeg(64, 48), "image/jpeg"))],
                           data={"format": "png"}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["files"][0]["filename"] == "photo.png"


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn"])
def test_asgi_servers_run_the_factory(tmp_path: Path, server: str) -> None:
    data_dir = tmp_path / "data"
    key = _key(data_dir)
    port = _free_port()
    argv = {
        "uvicorn": [_bin("uvicorn"), "--factory", "convertly.app:create_app",
                    "--host", "127.0.0.1", "--port", str(port)],
        "gunicorn": [_bin("gunicorn"), "-k", "uvicorn.workers.UvicornWorker", *GUNICORN_QUIET,
                     "--bind", f"127.0.0.1:{port}", "--workers", "1",
                     "convertly.app:create_app()"],
    }[server]
    base = f"http://127.0.0.1:{port}"
    with _running(argv, _env(data_dir), tmp_path, base):
        ready = httpx2.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        _converts(base, key)


def _headers_too_large(port: int) -> bytes:
    """The answer to a request whose headers go on past the guarded protocol's cap (it
    looks at the count as more header bytes arrive, so keep sending until it answers)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        for _ in range(66):
            sock.sendall(b"X-Padding: " + b"a" * 1000 + b"\r\n")
        sock.settimeout(0.1)
        for _ in range(400):
            try:
                sock.sendall(b"X-Padding: " + b"a" * 1000 + b"\r\n")
                return sock.recv(4096)
            except TimeoutError:
                continue
        raise AssertionError("no answer to over 400 kB of headers")


def test_serve_workers_runs_several_processes(tmp_path: Path, cluster: Cluster) -> None:
    settings = cluster.settings_for(Settings(data_dir=tmp_path / "data"))
    env = {**_env(tmp_path / "data"), "CONVERTLY_BROKER_URL": settings.broker_url,
           "CONVERTLY_S3_ENDPOINT": settings.s3_endpoint,
           "CONVERTLY_S3_ACCESS_KEY": settings.s3_access_key,
           "CONVERTLY_S3_SECRET_KEY": settings.s3_secret_key,
           "CONVERTLY_S3_BUCKET": settings.s3_bucket}
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [_convertly(), "serve", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "2", "--forwarded-allow-ips", "127.0.0.1"]
    with _running(argv, env, tmp_path, base) as process:
        children = psutil.Process(process.pid).children()
        # uvicorn's supervisor and its two processes (each with the app's own helpers).
        serving = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        assert len(serving) == 2, [c.cmdline() for c in children]
        for _ in range(6):  # new connections, spread over the processes by the kernel
            ready = httpx2.get(f"{base}/readyz", timeout=10)
            assert ready.status_code == 200, ready.text
        # A trusted proxy's scheme makes the links.
        index = httpx2.get(f"{base}/", headers={"Accept": "application/json",
                                                "X-Forwarded-Proto": "https"}, timeout=10)
        assert index.json()["formats"] == f"https://127.0.0.1:{port}/api/formats"
        # Each process runs convertly's guarded HTTP protocol, imported by name.
        assert _headers_too_large(port).startswith(b"HTTP/1.1 431 ")
        # The key `serve` printed at its first start works in every process.
        log = (tmp_path / "server.log").read_text()
        key = next(line.strip() for line in log.splitlines()
                   if line.strip().startswith("cvly_"))
        for _ in range(4):
            listed = httpx2.get(f"{base}/api/jobs", headers={"Authorization": f"Bearer {key}"},
                                timeout=10)
            assert listed.status_code == 200, listed.text


def _self_signed(directory: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is missing: run `make setup` (installs the Debian package openssl)"
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def _log_config(path: Path, into: Path) -> Path:
    """A logging configuration (uvicorn's JSON form) writing the access lines (the app's
    `convertly.access` logger: uvicorn's own access log is off) to `into`."""
    path.write_text(json.dumps({
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "ACCESS %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(into),
                              "formatter": "plain"}},
        "loggers": {"convertly.access": {"handlers": ["file"], "level": "INFO",
                                         "propagate": False}},
    }))
    return path


def test_serve_over_tls_under_a_root_path(tmp_path: Path) -> None:
    """HTTPS with the given certificate, links under the prefix a proxy serves it at (the
    proxy strips it: requests arrive without it), the logging configuration given, and
    forwarded headers ignored when told to."""
    cert, key = _self_signed(tmp_path)
    port = _free_port()
    access = tmp_path / "access.log"
    argv = [_convertly(), "serve", "--host", "127.0.0.1", "--port", str(port),
            "--ssl-certfile", str(cert), "--ssl-keyfile", str(key), "--root-path", "/cv",
            "--log-config", str(_log_config(tmp_path / "logging.json", access)),
            "--no-proxy-headers"]
    base = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=str(cert))
    with _running(argv, _env(tmp_path / "data"), tmp_path, base, verify=trust):
        index = httpx2.get(f"{base}/", headers={"Accept": "application/json",
                                                "X-Forwarded-Proto": "http"},
                           verify=trust, timeout=10).json()
        assert index["reference"] == f"{base}/cv/docs"
        assert index["formats"] == f"{base}/cv/api/formats"
        docs = httpx2.get(f"{base}/docs", verify=trust, timeout=10)
        assert docs.status_code == 200 and 'data-spec="openapi.json"' in docs.text
    log = (tmp_path / "server.log").read_text()
    assert f"https://localhost:{port}/cv/api/convert" in log
    lines = access.read_text().splitlines()
    assert any(line.startswith("ACCESS ") and "GET /docs " in line for line in lines), lines


def test_serve_workers_refuses_embedded_mode(tmp_path: Path) -> None:
    result = subprocess.run(
        [_convertly(), "serve", "--port", str(_free_port()), "--workers", "3"],
        cwd=tmp_path, env=_env(tmp_path / "data"), capture_output=True, text=True,
        timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == f"convertly: {EMBEDDED_WORKERS.format(n=3)}"


def test_serve_refuses_a_certificate_without_its_key(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not read")
    result = subprocess.run(
        [_convertly(), "serve", "--port", str(_free_port()), "--ssl-certfile", str(cert)],
        cwd=tmp_path, env=_env(tmp_path / "data"), capture_output=True, text=True,
        timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("convertly: --ssl-certfile and --ssl-keyfile go "
                                            "together"), result.stderr


def test_version(tmp_path: Path) -> None:
    result = subprocess.run([_convertly(), "--version"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"convertly {version('convertly')}"


def test_keys_list_json(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    empty = run_cli(data_dir, "keys", "list", "--json")
    assert empty.returncode == 0 and json.loads(empty.stdout) == []
    _key(data_dir)
    revoked = _key(data_dir)
    assert run_cli(data_dir, "keys", "revoke", revoked[:13]).returncode == 0
    listed = json.loads(run_cli(data_dir, "keys", "list", "--json").stdout)
    assert [k["active"] for k in sorted(listed, key=lambda k: k["createdAt"])] == [True, False]
    assert {tuple(sorted(k)) for k in listed} == {(
        "active", "createdAt", "lastUsedAt", "name", "prefix", "revokedAt", "tenant")}
    assert all(k["name"] == "server-test" and k["lastUsedAt"] is None for k in listed)


def test_one_embedded_server_per_data_directory(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", workers=1)
    with TestClient(create_app(settings)):
        with pytest.raises(DataDirBusyError) as refused, TestClient(create_app(settings)):
            pass
        assert str(tmp_path / "data") in str(refused.value)
    with TestClient(create_app(settings)) as again:  # the lock went with the first server
        assert again.get("/readyz").status_code == 200


def test_gunicorn_with_several_embedded_workers_stops(tmp_path: Path) -> None:
    """Several processes on one data directory in embedded mode: the second worker cannot
    start, and gunicorn stops rather than run a pool and a watchdog per process."""
    port = _free_port()
    result = subprocess.run(
        [_bin("gunicorn"), "-k", "uvicorn.workers.UvicornWorker", *GUNICORN_QUIET, "--bind",
         f"127.0.0.1:{port}", "--workers", "2", "convertly.app:create_app()"],
        cwd=tmp_path, env=_env(tmp_path / "data"), capture_output=True, text=True,
        timeout=120, check=False)
    assert result.returncode != 0
    assert "another Convertly server in embedded mode already uses the data directory" in (
        result.stderr), result.stderr
