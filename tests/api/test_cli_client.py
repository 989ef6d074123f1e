"""The client commands (`convertly convert`, `jobs`, `files`) run as real programs against a
real server: uvicorn on a free loopback port, in both deployment modes. Outputs are decoded;
exit statuses and stderr are checked for failures, bad keys and an unreachable server."""

from __future__ import annotations

import fcntl
import functools
import io
import json
import os
import pty
import re
import select
import socket
import struct
import subprocess
import sys
import termios
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import httpx2
import pytest
from convertly_client import MultipartBody
from PIL import Image

from convertly.app import create_app
from convertly.models import JobType, OutputFormat
from convertly.service import Services
from convertly.settings import Settings
from convertly.state.records import TenantLimits
from tests import images
from tests.api.support import Tenant, behind_socket, deployed, new_tenant, store_job
from tests.cluster import Cluster
from tests.origin import loopback_origin

CLI_TIMEOUT = 120
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _convertly() -> str:
    path = Path(sys.executable).parent / "convertly"
    assert path.is_file(), f"{path} is missing: run `make setup` to install the command"
    return str(path)


@dataclass(frozen=True)
class Served:
    mode: str
    url: str
    services: Services


@contextmanager
def serving(mode: str, settings: Settings, cluster: Cluster | None) -> Iterator[Served]:
    """The app behind a real socket (uvicorn in a thread), with a worker in distributed mode."""
    worker = cluster.start_worker(settings) if cluster is not None else None
    app = create_app(settings)
    try:
        with behind_socket(app, lifespan=True) as url:
            yield Served(mode, url, app.state.services)
    finally:
        if worker is not None:
            worker.stop()


@pytest.fixture(scope="module")
def served(mode: str, tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[Served]:
    """A server in each deployment mode."""
    settings, cluster = deployed(
        mode, Settings(data_dir=tmp_path_factory.mktemp(f"cli-{mode}"), workers=2), request)
    with serving(mode, settings, cluster) as running:
        yield running


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """An embedded server for what only concerns the client (terminal, memory, errors)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("cli-client"), workers=1,
                        fetch_allow_private=True)  # the URL test's origin is on loopback
    with serving("embedded", settings, None) as running:
        yield running


@pytest.fixture
def tenant(served: Served) -> Tenant:
    return new_tenant(served.services, "cli")


@dataclass
class Cli:
    """Runs `convertly` in `cwd` with the server's URL and the tenant's key in its
    environment (and nothing else of ours: no CONVERTLY_* from outside, no .env)."""

    url: str
    key: str
    cwd: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONVERTLY_")}
        env.update({"CONVERTLY_URL": self.url, "CONVERTLY_API_KEY": self.key, **extra})
        return env

    def __call__(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([_convertly(), *args], cwd=self.cwd, env=self.env(**extra),
                              capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False)


@pytest.fixture
def cli(served: Served, tenant: Tenant, tmp_path: Path) -> Cli:
    return Cli(served.url, tenant.key, tmp_path)


@pytest.fixture
def embedded_cli(embedded: Served, tmp_path: Path) -> Cli:
    return Cli(embedded.url, new_tenant(embedded.services, "cli").key, tmp_path)


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def _ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


# --- convert -----------------------------------------------------------------------------


def test_convert_waits_and_downloads_without_overwriting(cli: Cli, tmp_path: Path) -> None:
    photo = images.jpeg(2400, 1600)
    _write(tmp_path, "photo.jpg", photo)
    _write(tmp_path, "icon.png", images.png(300, 200))
    result = _ok(cli("convert", "photo.jpg", "icon.png", "--format", "webp",
                     "--resize", "website", "-o", "out"))
    assert result.stdout.split() == ["out/photo.webp", "out/icon.webp"]
    first = (tmp_path / "out/photo.webp").read_bytes()
    out = images.decode(first)
    assert (out.format, out.size) == ("WEBP", (1920, 1280))
    source = Image.open(io.BytesIO(photo)).resize((1920, 1280))
    assert images.mean_difference(source, out.image) < 8
    icon = images.decode((tmp_path / "out/icon.webp").read_bytes())
    assert (icon.format, icon.size) == ("WEBP", (300, 200))  # website never enlarges
    # Plain progress lines, not a redrawn bar, when stderr is not a terminal.
    assert "\r" not in result.stderr
    assert re.search(r"Job [0-9a-f-]{36}: 2/2 files \(100%\)", result.stderr), result.stderr

    # Again into the same directory: the first outputs stay, the new ones get a suffix.
    again = _ok(cli("convert", "photo.jpg", "--format", "png", "--width", "100",
                    "--compression", "50", "-o", "out"))
    assert again.stdout.split() == ["out/photo.png"]
    _ok(cli("convert", "photo.jpg", "--format", "webp", "-r", "email", "-o", "out"))
    assert (tmp_path / "out/photo.webp").read_bytes() == first
    renamed = images.decode((tmp_path / "out/photo-1.webp").read_bytes())
    assert (renamed.format, renamed.size) == ("WEBP", (600, 400))
    narrow = images.decode((tmp_path / "out/photo.png").read_bytes())
    assert (narrow.format, narrow.size) == ("PNG", (100, 67))


def test_convert_reports_each_failed_file_and_exits_non_zero(cli: Cli, tmp_path: Path) -> None:
    _write(tmp_path, "good.jpg", images.jpeg(64, 48))
    _write(tmp_path, "broken.jpg", images.truncated_jpeg())
    result = cli("convert", "good.jpg", "broken.jpg", "--format", "png")
    assert result.returncode == 1, result.stderr
    assert result.stdout.split() == ["good.png"]
    assert images.decode((tmp_path / "good.png").read_bytes()).size == (64, 48)
    assert re.search(r"broken\.jpg: .+\[CORRUPT_FILE\]", result.stderr), result.stderr
    assert "1 of 2 files failed" in result.stderr


def test_convert_archive(cli: Cli, tmp_path: Path) -> None:
    _write(tmp_path, "a.jpg", images.jpeg(320, 240, seed=3))
    _write(tmp_path, "b.jpg", images.jpeg(200, 100, seed=4))
    result = _ok(cli("convert", "a.jpg", "b.jpg", "-f", "png", "--archive", "-o", "bundle"))
    [saved] = result.stdout.split()
    assert re.fullmatch(r"bundle/convertly-[0-9a-f]{8}\.zip", saved)
    assert sorted(p.name for p in (tmp_path / "bundle").iterdir()) == [Path(saved).name]
    with zipfile.ZipFile(tmp_path / saved) as archive:
        sizes = {name: images.decode(archive.read(name)).size for name in archive.namelist()}
    assert sizes == {"a.png": (320, 240), "b.png": (200, 100)}


def test_compress_keeps_each_format_and_shrinks(cli: Cli, tmp_path: Path) -> None:
    photo = images.jpeg(640, 480, quality=98, exif={0x010F: "Camera Maker"})
    _write(tmp_path, "photo.jpg", photo)
    _write(tmp_path, "big.jpg", images.jpeg(800, 600, quality=98, seed=5))
    result = _ok(cli("compress", "photo.jpg", "--quality", "60", "--strip-metadata",
                     "-o", "small"))
    assert result.stdout.split() == ["small/photo.jpg"]
    out = (tmp_path / "small/photo.jpg").read_bytes()
    decoded = images.decode(out)
    assert (decoded.format, decoded.size) == ("JPEG", (640, 480))
    assert len(out) < len(photo) // 2
    assert 0x010F in images.decode(photo).exif and not decoded.exif

    target = 40_000
    result = _ok(cli("compress", "big.jpg", "--target-size", str(target), "-o", "fit"))
    assert result.stdout.split() == ["fit/big.jpg"]
    assert (tmp_path / "fit/big.jpg").stat().st_size <= target

    refused = cli("compress", "big.jpg", "--quality", "50", "--target-size", "1000")
    assert refused.returncode == 2 and "not allowed with" in refused.stderr


# --- jobs --------------------------------------------------------------------------------


def test_async_then_jobs_wait_get_list(cli: Cli, tmp_path: Path) -> None:
    _write(tmp_path, "pic.png", images.png(160, 120))
    created = _ok(cli("convert", "pic.png", "--format", "jpg", "--async", "--priority", "low"))
    job_id = created.stdout.strip()
    assert UUID.match(job_id), created.stdout
    assert not (tmp_path / "pic.jpg").exists()

    waited = _ok(cli("jobs", "wait", job_id, "-o", "later"))
    assert waited.stdout.split() == ["later/pic.jpg"]
    out = images.decode((tmp_path / "later/pic.jpg").read_bytes())
    assert (out.format, out.size) == ("JPEG", (160, 120))

    job = json.loads(_ok(cli("jobs", "get", job_id, "--json")).stdout)
    assert (job["jobId"], job["status"], job["completedFiles"]) == (job_id, "completed", 1)
    assert job["priority"] == "low"
    shown = _ok(cli("jobs", "get", job_id)).stdout
    assert "completed" in shown and "pic.png" in shown and "pic.jpg" in shown

    listed = _ok(cli("jobs", "list")).stdout.splitlines()
    assert listed[0].split()[:3] == ["JOB", "ID", "TYPE"]
    row = next(line for line in listed if line.startswith(job_id))
    assert row.split()[1:4] == ["convert", "completed", "1/1"]
    raw = json.loads(_ok(cli("jobs", "list", "--json", "--status", "completed")).stdout)
    assert job_id in [j["jobId"] for j in raw["jobs"]]


def test_jobs_wait_fails_for_a_failed_job(cli: Cli, tmp_path: Path) -> None:
    _write(tmp_path, "broken.jpg", images.truncated_jpeg())
    job_id = _ok(cli("convert", "broken.jpg", "-f", "webp", "--async")).stdout.strip()
    waited = cli("jobs", "wait", job_id)
    assert waited.returncode == 1
    assert "[CORRUPT_FILE]" in waited.stderr
    assert f"job {job_id} failed" in waited.stderr


def test_jobs_cancel(cli: Cli, served: Served, tenant: Tenant, tmp_path: Path) -> None:
    # Stored without being handed to an executor, so it stays pending until cancelled.
    job = store_job(served.services, tenant, [("x.png", images.png(32, 32))],
                    tmp_path / "spool", fmt=OutputFormat.JPG, job_type=JobType.CONVERT)
    cancelled = _ok(cli("jobs", "cancel", job.id))
    assert cancelled.stdout.strip() == f"Cancelled job {job.id}."
    again = cli("jobs", "cancel", job.id)
    assert again.returncode == 1
    assert "only pending or processing jobs can be cancelled" in again.stderr
    assert "[CONFLICT]" in again.stderr
    waited = cli("jobs", "wait", job.id)
    assert waited.returncode == 1 and "Cancelled" in waited.stderr
    shown = _ok(cli("jobs", "get", job.id)).stdout
    assert f"Job {job.id}: convert, cancelled, 0/1 files done, 1 failed" in shown
    assert "x.png  failed" in shown
    [row] = [line for line in _ok(cli("jobs", "list")).stdout.splitlines() if job.id in line]
    assert row.split()[2:5] == ["cancelled", "0/1", "1"]


# --- files (storage API) -----------------------------------------------------------------


def test_files_ls_get_rm(cli: Cli, tmp_path: Path) -> None:
    _write(tmp_path, "sunset.jpg", images.jpeg(120, 80, seed=5))
    _write(tmp_path, "logo.png", images.png(90, 60, seed=6))
    _ok(cli("convert", "sunset.jpg", "logo.png", "-f", "webp", "-o", "converted"))

    listing = json.loads(_ok(cli("files", "ls", "--json")).stdout)
    names = {f["filename"]: f for f in listing["files"]}
    assert {"sunset.webp", "logo.webp"} <= set(names)
    table = _ok(cli("files", "ls")).stdout
    assert names["sunset.webp"]["id"] in table
    found = json.loads(_ok(cli("files", "ls", "--search", "sunset", "--json")).stdout)
    assert "sunset.webp" in {f["filename"] for f in found["files"]}
    assert "logo.webp" not in {f["filename"] for f in found["files"]}
    root = json.loads(_ok(cli("files", "ls", "--folder", "null", "--json")).stdout)
    assert {"sunset.webp", "logo.webp"} <= {f["filename"] for f in root["files"]}
    limited = json.loads(_ok(cli("files", "ls", "--limit", "1", "--json")).stdout)
    assert len(limited["files"]) == 1 and limited["pagination"]["hasMore"]

    file_id = names["sunset.webp"]["id"]
    got = _ok(cli("files", "get", file_id, "-o", "fetched"))
    assert got.stdout.split() == ["fetched/sunset.webp"]
    out = images.decode((tmp_path / "fetched/sunset.webp").read_bytes())
    assert (out.format, out.size) == ("WEBP", (120, 80))
    link = _ok(cli("files", "get", file_id, "--link")).stdout.strip()
    assert link.startswith(f"{cli.url}/api/download/")

    removed = _ok(cli("files", "rm", file_id))
    assert removed.stdout.strip() == f"Deleted {file_id}."
    gone = cli("files", "get", file_id)
    assert gone.returncode == 1 and "[NOT_FOUND]" in gone.stderr
    listing = json.loads(_ok(cli("files", "ls", "--json")).stdout)
    assert file_id not in {f["id"] for f in listing["files"]}


# --- errors ------------------------------------------------------------------------------


def test_tool_runs_a_media_tool_and_downloads_its_output(embedded_cli: Cli,
                                                         tmp_path: Path) -> None:
    _write(tmp_path, "photo.jpg", images.jpeg(200, 100))
    result = _ok(embedded_cli("tool", "thumbnail", "photo.jpg", "--opt", "width=50",
                              "--opt", "format=png", "-o", "out"))
    assert result.stdout.split() == ["out/photo.png"]
    out = images.decode((tmp_path / "out/photo.png").read_bytes())
    assert (out.format, out.size) == ("PNG", (50, 25))


def test_bad_key_unreachable_server_and_usage_errors(embedded_cli: Cli, tmp_path: Path) -> None:
    cli = embedded_cli
    _write(tmp_path, "a.jpg", images.jpeg(32, 32))
    bad = cli("jobs", "list", "--api-key", "cvly_not-a-key")
    assert bad.returncode == 1
    assert "[UNAUTHORIZED]" in bad.stderr and "CONVERTLY_API_KEY" in bad.stderr

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, never listening
        down = cli("convert", "a.jpg", "-f", "png", "--url", nowhere)
    assert down.returncode == 1
    lines = down.stderr.strip().splitlines()
    assert len(lines) == 1, down.stderr
    assert nowhere in lines[0] and "connection refused" in lines[0]
    assert "convertly serve" in lines[0]

    missing = cli("convert", "nope.jpg", "-f", "png")
    assert missing.returncode == 2 and "nope.jpg: no such file" in missing.stderr
    no_key = cli("jobs", "list", CONVERTLY_API_KEY="")
    assert no_key.returncode == 2 and "no API key" in no_key.stderr
    unknown = cli("jobs", "get", "0" * 8)
    assert unknown.returncode == 1 and "[NOT_FOUND]" in unknown.stderr
    invalid = cli("convert", "a.jpg", "-f", "bmp")
    assert invalid.returncode == 2 and "unknown format 'bmp'" in invalid.stderr


def test_a_rate_limited_request_is_retried_after_retry_after(embedded: Served,
                                                             tmp_path: Path) -> None:
    tenant = new_tenant(embedded.services, "slow")
    # One request every 4 s: the CLI's request comes while the bucket is empty.
    embedded.services.keys.set_limits(tenant.tenant, TenantLimits(rate=0.25, burst=1))
    first = httpx2.get(f"{embedded.url}/api/jobs", headers=tenant.headers, timeout=30)
    assert first.status_code == 200
    assert httpx2.get(f"{embedded.url}/api/jobs", headers=tenant.headers,
                      timeout=30).status_code == 429
    listed = Cli(embedded.url, tenant.key, tmp_path)("jobs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["jobs"] == []
    # A request that cannot be sent again (an upload) is not retried: its 429 is reported.
    _write(tmp_path, "a.jpg", images.jpeg(32, 32))
    refused = Cli(embedded.url, tenant.key, tmp_path)("convert", "a.jpg", "-f", "png")
    assert refused.returncode == 1 and "[RATE_LIMITED]" in refused.stderr


def test_convert_a_url_the_server_fetches(embedded_cli: Cli, tmp_path: Path) -> None:
    origin_dir = tmp_path / "origin"
    origin_dir.mkdir()
    _write(origin_dir, "photo.jpg", images.jpeg(320, 240))
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(origin_dir))
    with loopback_origin(handler) as base:
        url = f"{base}/photo.jpg"
        result = _ok(embedded_cli("convert", url, "-f", "webp", "-o", "out"))
        assert result.stdout.split() == ["out/photo.webp"]
        out = images.decode((tmp_path / "out/photo.webp").read_bytes())
        assert (out.format, out.size) == ("WEBP", (320, 240))
        missing = embedded_cli("convert", url.replace("photo", "nothing"), "-f", "webp")
        assert missing.returncode == 1 and "HTTP 404" in missing.stderr, missing.stderr
    mixed = embedded_cli("convert", url, "other.jpg", "-f", "webp")
    assert mixed.returncode == 2 and "one URL per command" in mixed.stderr


def test_transfer_downloads_stores_and_extracts(embedded_cli: Cli, tmp_path: Path) -> None:
    origin_dir = tmp_path / "origin"
    origin_dir.mkdir()
    photo = images.jpeg(40, 30)
    _write(origin_dir, "photo.jpg", photo)
    with zipfile.ZipFile(origin_dir / "kit.zip", "w") as zf:
        zf.writestr("icons/a.jpg", photo)
        zf.writestr("b.txt", b"hello")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(origin_dir))
    with loopback_origin(handler) as base:
        got = _ok(embedded_cli("transfer", f"{base}/photo.jpg", "-o", "in"))
        assert got.stdout.split() == ["in/photo.jpg"]
        assert (tmp_path / "in/photo.jpg").read_bytes() == photo

        stored = _ok(embedded_cli("transfer", f"{base}/photo.jpg", "--store",
                                  "--filename", "kept.jpg")).stdout.split()
        assert stored[1:] == ["kept.jpg"]
        fetched = _ok(embedded_cli("files", "get", stored[0], "-o", "back"))
        assert (tmp_path / fetched.stdout.strip()).read_bytes() == photo

        unpacked = json.loads(_ok(embedded_cli(
            "transfer", f"{base}/kit.zip", "--extract", "--folder-name", "kit",
            "--json")).stdout)
        assert sorted(f["filename"] for f in unpacked["files"]) == ["a.jpg", "b.txt"]
        assert {f["name"] for f in unpacked["folders"]} == {"kit", "icons"}
        over = embedded_cli("transfer", f"{base}/kit.zip", "--extract", "--max-files", "1")
        assert over.returncode == 1 and "ARCHIVE_TOO_LARGE" in over.stderr, over.stderr
    usage = embedded_cli("transfer", f"{base}/kit.zip", "--flat")
    assert usage.returncode == 2 and "go with --extract" in usage.stderr


# --- progress and streaming --------------------------------------------------------------


def test_progress_bars_on_a_terminal(embedded_cli: Cli, tmp_path: Path) -> None:
    cli = embedded_cli
    _write(tmp_path, "a.jpg", images.jpeg(640, 480))
    leader, follower = pty.openpty()
    # 80 columns: the bars fit the whole job id and the counts by shortening themselves.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    with subprocess.Popen([_convertly(), "convert", "a.jpg", "-f", "webp"], cwd=tmp_path,
                          env=cli.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=follower) as process:
        os.close(follower)
        shown = b""
        while True:
            ready, _, _ = select.select([leader], [], [], CLI_TIMEOUT)
            assert ready, "no output on the terminal"
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the command ended and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        os.close(leader)
        assert process.stdout is not None
        assert process.stdout.read().split() == [b"a.webp"]
        assert process.wait(CLI_TIMEOUT) == 0
    text = shown.decode()
    assert "\r" in text
    for bar in ("Uploading 1 file [", "Downloading a.webp ["):
        assert re.search(re.escape(bar) + r"#{24}\] 100%", text), (bar, text)
    assert re.search(r"Job [0-9a-f-]{36} \[#{8,24}\] 100% 1/1 files", text), text
    assert all(len(line) <= 79 for line in re.split(r"[\r\n]", text)), text


def test_upload_streams_from_disk(embedded_cli: Cli, tmp_path: Path) -> None:
    """The command's peak memory does not grow with the size of what it uploads."""
    cli = embedded_cli
    _write(tmp_path, "small.bin", b"\0" * 1024)
    with (tmp_path / "big.bin").open("wb") as fh:
        fh.truncate(96 * 1024 * 1024)

    def peak_kib(name: str) -> int:
        # A small parent whose only child is the command: its RUSAGE_CHILDREN is the command.
        probe = ("import resource, subprocess, sys; "
                 "code = subprocess.run(sys.argv[1:]).returncode; "
                 "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
                 "sys.exit(code)")
        result = subprocess.run([sys.executable, "-c", probe, _convertly(), "convert", name,
                                 "-f", "png", "--async", "-q"], cwd=tmp_path, env=cli.env(),
                                capture_output=True, text=True, timeout=CLI_TIMEOUT)
        assert result.returncode == 0, result.stderr
        return int(result.stdout.split()[-1])

    small, big = peak_kib("small.bin"), peak_kib("big.bin")
    assert big - small < 24 * 1024, (small, big)  # 96 MB uploaded, well under 24 MB more


def test_multipart_body_length_is_exact(tmp_path: Path) -> None:
    first = _write(tmp_path, 'we"ird\nname.jpg', b"x" * 300_000)
    second = _write(tmp_path, "caf\u00e9.png", b"")
    body = MultipartBody([("format", "webp"), ("resizeWidths", "[1, null]")], [first, second])
    seen: list[int] = []
    data = b"".join(body.iter_bytes(seen.append))
    assert len(data) == body.length() == seen[-1]
    assert b'filename="we%22ird%0Aname.jpg"' in data
    assert 'filename="caf\u00e9.png"'.encode() in data
    assert data.endswith(f"--{body.boundary}--\r\n".encode())
