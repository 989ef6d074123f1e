"""The `convertly` command, run as a real program: key management, settings and storage checked
at start-up, and the first start of `convertly serve` on an empty data directory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from starlette.testclient import TestClient

from convertly import errors
from convertly.app import create_app
from convertly.settings import Settings
from tests import images
from tests.cluster import Cluster
from tests.infra import SeaweedS3, terminate

SERVE_TIMEOUT = 60.0
SERVE_MAX_FILE_BYTES = 2_000_000


def _convertly() -> str:
    path = Path(sys.executable).parent / "convertly"
    assert path.is_file(), f"{path} is missing: run `make setup` to install the command"
    return str(path)


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVERTLY_")}
    env.update({"CONVERTLY_DATA_DIR": str(data_dir), "CONVERTLY_WORKERS": "1",
                "CONVERTLY_LOG_LEVEL": "warning"})
    return env


def run_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # cwd is the data dir's parent so that no developer's .env is read.
    return subprocess.run([_convertly(), *args], cwd=data_dir.parent, env=_env(data_dir),
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _jobs_status(data_dir: Path, key: str) -> int:
    """GET /api/jobs with `key` against an app on `data_dir` (no workers needed)."""
    client = TestClient(create_app(Settings(data_dir=data_dir, workers=1)))
    return client.get("/api/jobs", headers={"Authorization": f"Bearer {key}"}).status_code


def test_keys_create_list_revoke(data_dir: Path) -> None:
    created = run_cli(data_dir, "keys", "create", "--name", "ci robot")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("cvly_") and " " not in key
    assert _jobs_status(data_dir, key) == 200

    listed = run_cli(data_dir, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    prefix = key[:13]
    row = next(line for line in listed.stdout.splitlines() if line.startswith(prefix))
    assert "ci robot" in row and "active" in row
    assert key not in listed.stdout  # only the prefix is ever shown again

    revoked = run_cli(data_dir, "keys", "revoke", prefix)
    assert revoked.returncode == 0, revoked.stderr
    assert prefix in revoked.stdout
    assert _jobs_status(data_dir, key) == 401
    listed = run_cli(data_dir, "keys", "list")
    assert "revoked" in next(line for line in listed.stdout.splitlines()
                             if line.startswith(prefix))


def test_a_second_key_shares_an_existing_tenant_only(data_dir: Path) -> None:
    first = run_cli(data_dir, "keys", "create", "--name", "first")
    assert first.returncode == 0, first.stderr
    tenant = first.stdout.split("for tenant ", 1)[1].split(".", 1)[0]
    second = run_cli(data_dir, "keys", "create", "--name", "second", "--tenant", tenant)
    assert second.returncode == 0, second.stderr
    assert f"for tenant {tenant}." in second.stdout

    typo = run_cli(data_dir, "keys", "create", "--name", "third", "--tenant", tenant + "x")
    assert typo.returncode == 1
    assert f"no tenant {tenant + 'x'!r}" in typo.stderr and "keys list" in typo.stderr
    assert "third" not in run_cli(data_dir, "keys", "list").stdout


def test_revoking_an_unknown_prefix_fails(data_dir: Path) -> None:
    result = run_cli(data_dir, "keys", "revoke", "cvly_nope")
    assert result.returncode == 1
    assert "cvly_nope" in result.stderr


def test_invalid_setting_fails_fast(data_dir: Path) -> None:
    env = {**_env(data_dir), "CONVERTLY_WORKERS": "zero"}
    result = subprocess.run([_convertly(), "keys", "list"], cwd=data_dir.parent, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "CONVERTLY_WORKERS" in result.stderr


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_s3_endpoint_with_a_scheme_fails_fast(data_dir: Path, command: str) -> None:
    env = {**_env(data_dir), "CONVERTLY_BROKER_URL": "redis://127.0.0.1:1/0",
           "CONVERTLY_S3_ENDPOINT": "http://127.0.0.1:9190", "CONVERTLY_S3_ACCESS_KEY": "a",
           "CONVERTLY_S3_SECRET_KEY": "b"}
    result = subprocess.run([_convertly(), command], cwd=data_dir.parent, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "convertly: invalid setting: CONVERTLY_S3_ENDPOINT: expected host:port (e.g. "
        "minio:9000) with no http:// and no path (for HTTPS set CONVERTLY_S3_SECURE=true), "
        "got 'http://127.0.0.1:9190'")


@pytest.mark.parametrize("state", [False, True])
def test_serve_names_the_redis_it_cannot_reach(data_dir: Path, state: bool) -> None:
    broker = f"redis://127.0.0.1:{_free_port()}/0"
    env = {**_env(data_dir), "CONVERTLY_BROKER_URL": broker}
    if state:
        env["CONVERTLY_STATE_URL"] = f"redis://:secret@127.0.0.1:{_free_port()}/3"
    result = subprocess.run([_convertly(), "serve", "--port", str(_free_port())],
                            cwd=data_dir.parent, env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    named = env["CONVERTLY_STATE_URL"].replace(":secret@", "") if state else broker
    setting = "CONVERTLY_STATE_URL" if state else "CONVERTLY_BROKER_URL"
    assert last.startswith(f"convertly: Redis at {named} ({setting}) does not answer"), last
    assert last.endswith(f"start it, or point {setting} at a running one."), last
    assert "secret" not in result.stderr


def _s3_env(data_dir: Path, s3: SeaweedS3, secret_key: str) -> dict[str, str]:
    return {**_env(data_dir), "CONVERTLY_S3_ENDPOINT": s3.endpoint,
            "CONVERTLY_S3_ACCESS_KEY": s3.access_key, "CONVERTLY_S3_SECRET_KEY": secret_key,
            "CONVERTLY_S3_BUCKET": "cli-refused"}


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_s3_refusing_the_credentials_stops_start_up(data_dir: Path, cluster: Cluster,
                                                    command: str) -> None:
    env = _s3_env(data_dir, cluster.s3, "wrong-secret")
    argv = [_convertly(), command]
    if command == "serve":
        argv += ["--host", "127.0.0.1", "--port", str(_free_port())]
    else:  # nothing listens there: the storage is checked before the broker is used
        env["CONVERTLY_BROKER_URL"] = f"redis://127.0.0.1:{_free_port()}/0"
    result = subprocess.run(argv, cwd=data_dir.parent, env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"convertly: S3 storage {cluster.s3.endpoint} refuses this server's credentials "
        "(SignatureDoesNotMatch): check CONVERTLY_S3_ACCESS_KEY and CONVERTLY_S3_SECRET_KEY, "
        "and that they may use bucket 'cli-refused'.")
    assert "cvly_" not in result.stdout  # no first-start key was made for a server that never ran
    # Asked once at start-up, so logged once.
    assert result.stderr.count("(SignatureDoesNotMatch during ") == 1, result.stderr


def test_serve_starts_while_s3_is_down(data_dir: Path, tmp_path: Path) -> None:
    """A storage that is down is an outage, not a configuration error: the server starts and
    says so at /healthz until the storage is back."""
    s3 = SeaweedS3(tmp_path / "seaweed")  # not started
    try:
        port = _free_port()
        stderr_path = tmp_path / "stderr.log"
        with stderr_path.open("w") as stderr:
            process = subprocess.Popen(
                [_convertly(), "serve", "--host", "127.0.0.1", "--port", str(port)],
                cwd=tmp_path, env={**_s3_env(data_dir, s3, s3.secret_key),
                                   "CONVERTLY_LOG_LEVEL": "info"},
                stdout=subprocess.DEVNULL, stderr=stderr,
            )
        try:
            health = _wait_for_health(process, f"http://127.0.0.1:{port}", stderr_path)
            assert health.status_code == 503
            assert health.json()["checks"]["storage"] == errors.StorageUnavailableError(
                ).message
            s3.start()
            health = _wait_for_health(process, f"http://127.0.0.1:{port}", stderr_path,
                                      status=200)
        finally:
            terminate(process)
    finally:
        s3.close()


def _wait_for_health(process: subprocess.Popen[bytes], base: str, stderr: Path,
                     status: int | None = None) -> httpx2.Response:
    """The first /healthz answer (with `status`, when given)."""
    deadline = time.monotonic() + SERVE_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, f"convertly serve exited: {stderr.read_text()}"
        try:
            response = httpx2.get(f"{base}/healthz", timeout=10)
            if status is None or response.status_code == status:
                return response
        except httpx2.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"convertly serve is not answering: {stderr.read_text()}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _children(pid: int) -> set[int]:
    """Processes whose parent is `pid` (the conversion workers)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped by whoever adopted it has exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.fixture
def server(data_dir: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`convertly serve` on a free port and an empty data dir: (base URL, first-start key).
    Stopped with SIGTERM afterwards, which must shut it down cleanly, workers included."""
    port = _free_port()
    stdout_path, stderr_path = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with stdout_path.open("w") as stdout, stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [_convertly(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path, env={**_env(data_dir), "CONVERTLY_LOG_LEVEL": "info",
                               "CONVERTLY_MAX_FILE_BYTES": str(SERVE_MAX_FILE_BYTES)},
            stdout=stdout, stderr=stderr,
        )
    workers: set[int] = set()
    try:
        key = _wait_for_key(process, stdout_path, stderr_path)
        base = f"http://127.0.0.1:{port}"
        _wait_until_serving(process, base, stderr_path)
        workers = _children(process.pid)
        yield base, key
    finally:
        if not terminate(process):
            raise AssertionError("convertly serve did not stop on SIGTERM")
    log = stderr_path.read_text()
    # uvicorn shuts down gracefully, then exits through the signal it caught.
    assert process.returncode in (0, -signal.SIGTERM), log
    assert "Application shutdown complete" in log
    assert workers, "no conversion worker process was running"
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers), "worker processes outlived the server"


def _wait_for_key(process: subprocess.Popen[bytes], stdout: Path, stderr: Path) -> str:
    deadline = time.monotonic() + SERVE_TIMEOUT
    while time.monotonic() < deadline:
        for line in stdout.read_text().splitlines():
            if line.strip().startswith("cvly_"):
                return line.strip()
        assert process.poll() is None, f"convertly serve exited: {stderr.read_text()}"
        time.sleep(0.05)
    raise AssertionError(f"no first-start key printed: {stdout.read_text()}")


def _wait_until_serving(process: subprocess.Popen[bytes], base: str, stderr: Path) -> None:
    deadline = time.monotonic() + SERVE_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, f"convertly serve exited: {stderr.read_text()}"
        try:
            if httpx2.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"convertly serve is not answering: {stderr.read_text()}")


def test_first_start_prints_a_key_that_converts(server: tuple[str, str]) -> None:
    base, key = server
    photo = images.jpeg(640, 480)
    response = httpx2.post(
        f"{base}/api/convert",
        headers={"Authorization": f"Bearer {key}"},
        files=[("files", ("photo.jpg", photo, "image/jpeg"))],
        data={"format": "webp", "resize": "email", "saveToStorage": "true"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    entry = response.json()["files"][0]
    assert entry["filename"] == "photo.webp"
    # The link is built from the Host the client used.
    assert entry["downloadUrl"].startswith(f"{base}/api/download/")
    fetched = httpx2.get(entry["downloadUrl"], timeout=30)
    assert fetched.status_code == 200
    out = images.decode(fetched.content)
    assert (out.format, out.size) == ("WEBP", (600, 450))

    unauthorised = httpx2.get(f"{base}/api/jobs", timeout=30)
    assert unauthorised.status_code == 401
    assert unauthorised.json()["code"] == "UNAUTHORIZED"


def test_oversized_upload_over_a_real_socket(server: tuple[str, str]) -> None:
    base, key = server
    headers = {"Authorization": f"Bearer {key}"}
    # The server answers before it has read the whole body; the client still gets the 413.
    response = httpx2.post(
        f"{base}/api/convert", headers=headers,
        files=[("files", ("huge.jpg", b"\xff\xd8\xff" + bytes(3 * SERVE_MAX_FILE_BYTES),
                          "image/jpeg"))],
        data={"format": "png"}, timeout=60,
    )
    assert response.status_code == 413
    assert response.json()["code"] == "FILE_TOO_LARGE"
    # And keeps serving.
    response = httpx2.post(
        f"{base}/api/convert", headers=headers,
        files=[("files", ("small.jpg", images.jpeg(64, 48), "image/jpeg"))],
        data={"format": "png"}, timeout=60,
    )
    assert response.status_code == 200, response.text


def test_a_client_gone_mid_upload_is_not_an_error(server: tuple[str, str],
                                                  tmp_path: Path) -> None:
    base, key = server
    host, port = base.removeprefix("http://").split(":")
    head = (f"POST /api/convert HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {key}\r\n"
            "Content-Type: multipart/form-data; boundary=cut\r\n"
            "Content-Length: 1000000\r\n\r\n"
            "--cut\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + bytes(64 * 1024))
        time.sleep(0.5)  # the server is reading the body when the client goes
    log_path = tmp_path / "stderr.log"
    deadline = time.monotonic() + 10
    while "went away" not in log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = log_path.read_text()
    assert "POST /api/convert: the client went away" in log, log
    assert "Traceback" not in log and "ERROR" not in log, log
    response = httpx2.post(
        f"{base}/api/convert", headers={"Authorization": f"Bearer {key}"},
        files=[("files", ("small.jpg", images.jpeg(64, 48), "image/jpeg"))],
        data={"format": "png"}, timeout=60,
    )
    assert response.status_code == 200, response.text
