"""A real server for the hostile corpus (`convertly serve` in its own process, plus a Celery
worker in distributed mode), a sampler of every process's memory, a loopback listener that
counts connections, and the checks every answer must pass."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from convertly import service
from convertly.settings import Settings
from tests.cluster import Cluster, Worker
from tests.hostile.corpus import Case
from tests.hostile.corpus import multipart as corpus_multipart
from tests.infra import free_ports

# Error codes of limits: their message must name the setting that sets the limit.
LIMIT_CODES = frozenset({
    "PAYLOAD_TOO_LARGE", "FILE_TOO_LARGE", "TOO_MANY_FILES", "IMAGE_TOO_LARGE",
    "MEDIA_TOO_LONG", "TOO_MANY_PAGES", "ARCHIVE_TOO_LARGE", "MEMORY_LIMIT",
})
# Outcomes that are never acceptable, whatever the input.
BROKEN_CODES = frozenset({"INTERNAL_ERROR", "WORKER_CRASHED"})
REQUEST_TIMEOUT = 60.0
JOB_TIMEOUT = 90.0
MIB = 1024 * 1024


class Listener:
    """A TCP listener on loopback that records every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.connections: list[bytes] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(1)
                try:
                    self.connections.append(conn.recv(4096))
                except OSError:
                    self.connections.append(b"")

    def close(self) -> None:
        self.sock.close()


class MemorySampler:
    """Polls the resident memory of the API process, the worker processes and the tools they
    run, keeping the peak of each kind per phase (a corpus category)."""

    def __init__(self, roots: dict[str, int], interval: float = 0.02) -> None:
        self.roots = roots  # kind -> pid: "api", and "worker-main" in distributed mode
        self.interval = interval
        self.phase = "start"
        self.peaks: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.worker_pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _kind(self, proc: psutil.Process, parent_kind: str) -> str:
        if parent_kind == "api" and self.roots.get("worker-main") is None:
            cmdline = " ".join(proc.cmdline())
            if "resource_tracker" in cmdline:
                return "helper"
            return "worker"  # the embedded pool's processes
        if parent_kind == "worker-main":
            return "worker"  # Celery's pool children
        return f"tool:{proc.name()}"

    def _walk(self, proc: psutil.Process, kind: str, out: dict[str, int]) -> None:
        try:
            rss = proc.memory_info().rss
            children = proc.children()
        except psutil.Error:
            return
        out[kind] = max(out.get(kind, 0), rss)
        if kind == "worker":
            self.worker_pids.add(proc.pid)
        for child in children:
            try:
                child_kind = self._kind(child, kind)
            except psutil.Error:
                continue
            self._walk(child, child_kind, out)

    def _run(self) -> None:
        procs = {kind: psutil.Process(pid) for kind, pid in self.roots.items()}
        while not self._stop.is_set():
            sample: dict[str, int] = {}
            for kind, proc in procs.items():
                self._walk(proc, kind, sample)
            peaks = self.peaks[self.phase]
            for kind, rss in sample.items():
                if kind.startswith("tool:"):
                    kind = "tools"
                peaks[kind] = max(peaks[kind], rss)
            time.sleep(self.interval)

    def overall(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for peaks in self.peaks.values():
            for kind, rss in peaks.items():
                out[kind] = max(out[kind], rss)
        return dict(out)


@dataclass
class HostileServer:
    """`convertly serve` on a free port (and a Celery worker in distributed mode)."""

    mode: str
    settings: Settings
    cluster: Cluster | None = None
    base: str = ""
    key: str = ""
    proc: subprocess.Popen[bytes] | None = None
    worker: Worker | None = None
    log_path: Path = field(default_factory=Path)

    def start(self) -> None:
        data_dir = self.settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        if self.mode == "distributed":
            assert self.cluster is not None
            self.worker = self.cluster.start_worker(self.settings)
        svc = service.build_services(self.settings)
        self.key, _ = svc.keys.create("hostile")
        port = free_ports(1)[0]
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = data_dir / "api.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "convertly", "serve", "--host", "127.0.0.1", "--port",
                 str(port)],
                env={**os.environ, **self.settings.to_env()}, cwd=data_dir, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, f"convertly serve exited:\n{self.log_tail()}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"server did not start:\n{self.log_tail()}"
            time.sleep(0.1)

    def roots(self) -> dict[str, int]:
        assert self.proc is not None
        roots = {"api": self.proc.pid}
        if self.worker is not None and self.worker.proc is not None:
            roots["worker-main"] = self.worker.proc.pid
        return roots

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.worker is not None:
            self.worker.stop()

    def log_tail(self, limit: int = 5000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return "(no log)"

    def logs(self) -> str:
        text = self.log_path.read_text(errors="replace")
        if self.worker is not None:
            text += self.worker.log_path.read_text(errors="replace")
        return text

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


# --- running cases --------------------------------------------------------------------------


@dataclass
class Outcome:
    case: Case
    where: str  # the path, or "job"
    status: int
    code: str  # "ok" or the error code
    seconds: float
    problems: list[str] = field(default_factory=list)


def check_error_body(response: httpx.Response) -> tuple[str, list[str]]:
    """The error code of a 4xx/5xx answer and what is wrong with its body."""
    problems = []
    try:
        body = response.json()
    except ValueError:
        return "?", [f"{response.status_code} body is not JSON: {response.text[:200]!r}"]
    if not isinstance(body, dict):
        return "?", [f"error body is not an object: {body!r:.200}"]
    message, code = body.get("error"), body.get("code")
    if not isinstance(message, str) or not message:
        problems.append(f"no 'error' message: {body!r:.300}")
    if not isinstance(code, str) or not code:
        problems.append(f"no 'code': {body!r:.300}")
        code = "?"
    if not response.headers.get("content-type", "").startswith("application/json"):
        problems.append("error is not served as application/json")
    if code in LIMIT_CODES and "CONVERTLY_" not in str(message):
        problems.append(f"{code} does not name the setting: {message!r}")
    return str(code), problems


def _request(client: httpx.Client, server: HostileServer, case: Case, path: str
             ) -> httpx.Response:
    headers: dict[str, Any] = {**(server.headers if case.auth else {})}
    # Header values as latin-1 bytes: a hostile client sends what it likes.
    headers.update({k: v.encode("latin-1") for k, v in case.headers.items()})
    url = f"{server.base}{path}"
    if case.method == "GET":
        return client.get(url, headers=headers)
    if case.body is not None:
        if case.content_type is not None:
            headers["Content-Type"] = case.content_type
        return client.post(url, headers=headers, content=case.body)
    parts: list[tuple[str, str | None, bytes]] = [
        (name, None, value.encode()) for name, value in case.fields.items()]
    parts += [("files", filename, data) for filename, data in case.files]
    body, content_type = corpus_multipart(parts)
    headers["Content-Type"] = content_type
    return client.post(url, headers=headers, content=body)


def run_request(client: httpx.Client, server: HostileServer, case: Case, path: str,
                jobs: list[tuple[str, list[Case]]]) -> Outcome:
    started = time.monotonic()
    problems: list[str] = []
    try:
        response = _request(client, server, case, path)
    except httpx.TimeoutException:
        return Outcome(case, path, 0, "TIMEOUT", time.monotonic() - started,
                       [f"no answer within {REQUEST_TIMEOUT} s"])
    except httpx.TransportError as exc:
        return Outcome(case, path, 0, "DROPPED", time.monotonic() - started,
                       [f"the connection failed: {exc!r}"])
    seconds = time.monotonic() - started
    status = response.status_code
    if status >= 500:
        problems.append(f"{status}: {response.text[:300]}")
    if status >= 400:
        code, more = check_error_body(response)
        problems += more
    else:
        code = "ok"
        body = response.json()
        if path.startswith("/api/jobs") and case.method == "POST":
            code = "accepted"  # the job's own outcome is collected later
            jobs.append((body["jobId"], [case]))
        elif "files" in body:
            for entry in body["files"]:
                problems += check_output(client, entry.get("downloadUrl"), entry.get("format"))
    return Outcome(case, path, status, code, seconds, problems)


def submit_batch(client: httpx.Client, server: HostileServer, cases: list[Case]) -> str:
    """Send file cases together in one job; returns its id."""
    files = [("files", (name, data, "application/octet-stream"))
             for case in cases for name, data in case.files]
    data = {"formats": json.dumps([case.fields["format"] for case in cases])}
    if any("page" in case.fields for case in cases):
        data["pages"] = json.dumps([int(c.fields["page"]) if "page" in c.fields else None
                                    for c in cases])
    response = client.post(f"{server.base}/api/jobs", headers=server.headers, files=files,
                           data=data)
    assert response.status_code == 200, response.text
    job_id: str = response.json()["jobId"]
    return job_id


def collect_job(client: httpx.Client, server: HostileServer, job_id: str, cases: list[Case]
                ) -> list[Outcome]:
    started = time.monotonic()
    deadline = started + JOB_TIMEOUT
    while True:
        response = client.get(f"{server.base}/api/jobs/{job_id}", headers=server.headers)
        assert response.status_code == 200, response.text
        job = response.json()
        if job["status"] in ("completed", "failed"):
            break
        if time.monotonic() > deadline:
            return [Outcome(c, "job", 0, "TIMEOUT", JOB_TIMEOUT,
                            [f"job {job_id} still {job['status']} after {JOB_TIMEOUT} s"])
                    for c in cases]
        time.sleep(0.1)
    seconds = time.monotonic() - started
    outcomes = []
    for case, result in zip(cases, job["results"], strict=True):
        problems = []
        if result["status"] == "completed":
            code = "ok"
            problems += check_output(client, result["downloadUrl"], result["format"])
        else:
            code = result.get("errorCode") or "?"
            if not result.get("error") or code == "?":
                problems.append(f"failed without error and errorCode: {result}")
            elif code in LIMIT_CODES and "CONVERTLY_" not in result["error"]:
                problems.append(f"{code} does not name the setting: {result['error']!r}")
        outcomes.append(Outcome(case, "job", 200, code, seconds, problems))
    return outcomes


def check_output(client: httpx.Client, url: str | None, fmt: str | None) -> list[str]:
    """Archives the service wrote hold no absolute, climbing or link entries; no output
    holds the server's /etc/passwd."""
    if not url or fmt not in ("zip", "tar", "tgz", "svg", "pdf"):
        return []
    if url.startswith("data:"):
        data = base64.b64decode(url.partition(",")[2])
    else:
        response = client.get(url)
        if response.status_code != 200:
            return [f"output download failed: {response.status_code}"]
        data = response.content
    problems = []
    if b"root:x:0:0:" in data:
        problems.append("the output holds the server's /etc/passwd")
    if fmt in ("svg", "pdf"):
        return problems
    names: list[str] = []
    if fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                names.append(info.filename)
                if (info.external_attr >> 16) & 0o170000 not in (0, 0o100000, 0o040000):
                    problems.append(f"output zip has a special entry {info.filename!r}")
    else:
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            for member in tf.getmembers():
                names.append(member.name)
                if not (member.isreg() or member.isdir()):
                    problems.append(f"output tar has a link or device {member.name!r}")
    for name in names:
        if name.startswith("/") or ".." in name.replace("\\", "/").split("/"):
            problems.append(f"output archive has an unsafe entry name {name!r}")
    return problems


@dataclass
class Report:
    """What a mode's corpus run saw, per category."""

    mode: str
    outcomes: dict[str, list[Outcome]] = field(default_factory=lambda: defaultdict(list))

    def table(self, sampler: MemorySampler) -> str:
        kinds = ["api", "worker", "worker-main", "tools"]
        lines = [f"hostile corpus, {self.mode} mode",
                 f"{'category':16} {'cases':>5} {'answers':>7} {'ok':>4} {'4xx/failed':>10} "
                 f"{'slowest':>8}  " + "  ".join(f"{k + ' MiB':>14}" for k in kinds)]
        for category, outcomes in self.outcomes.items():
            cases = len({o.case.label for o in outcomes})
            ok = sum(o.code == "ok" for o in outcomes)
            peaks = sampler.peaks.get(category, {})
            lines.append(
                f"{category:16} {cases:5} {len(outcomes):7} {ok:4} {len(outcomes) - ok:10} "
                f"{max(o.seconds for o in outcomes):7.1f}s  "
                + "  ".join(f"{peaks.get(k, 0) / MIB:14.0f}" for k in kinds))
        overall = sampler.overall()
        lines.append("peak RSS overall: " + ", ".join(
            f"{k} {overall.get(k, 0) / MIB:.0f} MiB" for k in kinds if k in overall))
        codes: Counter[str] = Counter(o.code for os_ in self.outcomes.values() for o in os_)
        lines.append("outcomes: " + ", ".join(f"{c} {n}" for c, n in codes.most_common()))
        return "\n".join(lines)


@contextlib.contextmanager
def http_client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
        yield client


def post_raw(server: HostileServer, head: bytes, body_chunks: Iterator[bytes],
             timeout: float = 20.0) -> tuple[int, bytes, int]:
    """Send a hand-written request over a socket; (status, body, bytes of body sent before
    the answer came)."""
    host, port = server.base.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        answer = b""
        deadline = time.monotonic() + timeout
        for chunk in body_chunks:
            with contextlib.suppress(BlockingIOError):
                answer += sock.recv(65536)
            if answer:
                break
            try:
                sock.setblocking(True)
                sock.sendall(chunk)
                sock.setblocking(False)
            except OSError:
                break
            sent += len(chunk)
            if time.monotonic() > deadline:
                break
        sock.setblocking(True)
        sock.settimeout(timeout)
        while b"\r\n\r\n" not in answer or len(answer) < _length(answer):
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            answer += data
    head_part, _, body = answer.partition(b"\r\n\r\n")
    status = int(head_part.split(b" ", 2)[1]) if head_part.startswith(b"HTTP/") else 0
    return status, body, sent


def _length(answer: bytes) -> int:
    head, sep, _ = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + len(sep) + int(value.strip())
    return 0


def dump(report: Report, sampler: MemorySampler, path: Path) -> None:
    data: dict[str, Any] = {
        "mode": report.mode,
        "peaks": {phase: dict(p) for phase, p in sampler.peaks.items()},
        "outcomes": {cat: [[o.case.name, o.where, o.status, o.code, round(o.seconds, 2)]
                           for o in outs] for cat, outs in report.outcomes.items()},
    }
    path.write_text(json.dumps(data, indent=1))
