"""A small HTTP client for a Convertly server: jobs, downloads and the storage API.

Uploads stream from disk as a hand-built multipart body (never read whole into memory), so
the caller can count the bytes as they leave. The API key goes only to the server's own API
routes; signed download links need no key and get none.

Errors, all `ClientError`:

    ClientError             anything that stops a request (a connection that broke off, a
    │                       server that did not answer in time); `message` is one line
    ├── ConnectionFailed    the server could not be reached (refused, unknown host, timeout)
    └── ApiError            the server answered an error ({"error", "code"} or not JSON)

They are separate from `convertly.errors`, which are the server's own errors and map to HTTP
statuses; these describe another server's answer as seen from the client.
"""

from __future__ import annotations

import base64
import mimetypes
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx2

CHUNK = 256 * 1024
TIMEOUT = httpx2.Timeout(300.0, connect=10.0)
FINISHED = ("completed", "failed")
LONG_WAIT = 30.0  # seconds a job request may wait on the server (it allows up to 60)
# A 429 (rate limit) to a request that can be sent again is retried after its Retry-After,
# this many times, when that is at most RETRY_AFTER_MAX seconds.
RATE_LIMIT_RETRIES = 3
RETRY_AFTER_MAX = 60
_REPEATABLE = frozenset({"GET", "HEAD", "DELETE"})


class ClientError(Exception):
    """A request could not be made or was refused; `message` says why in one line."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class ConnectionFailed(ClientError):
    """Nothing answered at `url` (connection refused, unknown host, timeout)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach the Convertly server at {url} ({reason})")


class ApiError(ClientError):
    """The server answered with an error status; `code` is its machine code when it sent
    Convertly's error body, else None."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 detail: Mapping[str, Any] | None = None) -> None:
        self.status = status
        self.code = code
        self.detail = dict(detail or {})
        super().__init__(message)


# --- multipart ---------------------------------------------------------------------------


def _quoted(value: str) -> str:
    """A form parameter value as browsers quote it (HTML's multipart encoding algorithm)."""
    return value.replace("\n", "%0A").replace("\r", "%0D").replace('"', "%22")


@dataclass(frozen=True)
class MultipartBody:
    """A multipart/form-data body of text fields and files, read from disk as it is sent."""

    fields: Sequence[tuple[str, str]]
    files: Sequence[Path]
    file_field: str = "files"
    boundary: str = field(default_factory=lambda: f"convertly-{secrets.token_hex(16)}")

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def _field_head(self, name: str) -> bytes:
        return (f'--{self.boundary}\r\nContent-Disposition: form-data; '
                f'name="{_quoted(name)}"\r\n\r\n').encode()

    def _file_head(self, path: Path) -> bytes:
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return (f'--{self.boundary}\r\nContent-Disposition: form-data; '
                f'name="{self.file_field}"; filename="{_quoted(path.name)}"\r\n'
                f"Content-Type: {kind}\r\n\r\n").encode()

    def _tail(self) -> bytes:
        return f"--{self.boundary}--\r\n".encode()

    def length(self) -> int:
        """The exact body size (so the server can refuse an oversized body up front)."""
        total = len(self._tail())
        for name, value in self.fields:
            total += len(self._field_head(name)) + len(value.encode()) + 2
        for path in self.files:
            total += len(self._file_head(path)) + path.stat().st_size + 2
        return total

    def iter_bytes(self, on_sent: Callable[[int], None] | None = None) -> Iterator[bytes]:
        """The body in chunks; `on_sent(n)` after each chunk with the bytes sent so far."""
        sent = 0

        def emit(chunk: bytes) -> bytes:
            nonlocal sent
            sent += len(chunk)
            if on_sent is not None:
                on_sent(sent)
            return chunk

        for name, value in self.fields:
            yield emit(self._field_head(name) + value.encode() + b"\r\n")
        for path in self.files:
            yield emit(self._file_head(path))
            with path.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    yield emit(chunk)
            yield emit(b"\r\n")
        yield emit(self._tail())


# --- downloads ---------------------------------------------------------------------------


def safe_filename(name: str | None, fallback: str = "file") -> str:
    """The last path component of a name the server chose, never hidden or empty."""
    base = PurePosixPath((name or "").replace("\\", "/")).name.strip().lstrip(".")
    return base or fallback


def reserve(directory: Path, name: str) -> tuple[Path, BinaryIO]:
    """Create `name` in `directory` for writing, or `stem-1.ext`, `stem-2.ext`, ... when it
    exists: an existing file is never overwritten (the name is taken with O_EXCL)."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, dot, ext = name, "", ""
    candidate = directory / name
    for n in range(1, 10_000):
        try:
            return candidate, candidate.open("xb")
        except FileExistsError:
            candidate = directory / f"{stem}-{n}{dot}{ext}"
    raise ClientError(f"too many files named like {name} in {directory}")


# --- the client --------------------------------------------------------------------------


class Client:
    """Talks to one server. Close it (or use it as a context manager) when done."""

    def __init__(self, url: str, api_key: str, *, timeout: httpx2.Timeout = TIMEOUT,
                 transport: httpx2.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self._http = httpx2.Client(timeout=timeout, transport=transport,
                                   follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, *, auth: bool = True, stream: bool = False,
              **kwargs: Any) -> httpx2.Response:
        """Send one request; a 429 to a request that can be sent again (GET, HEAD, DELETE:
        nothing was done) is retried after its Retry-After, up to RATE_LIMIT_RETRIES times.
        Raises ApiError for an error answer."""
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            response = self._send_once(method, path, auth=auth, stream=stream, **kwargs)
            delay = _retry_after(response) if method in _REPEATABLE else None
            if response.status_code != 429 or delay is None or attempt == RATE_LIMIT_RETRIES:
                break
            response.close()
            time.sleep(delay)
        if response.is_error:
            if stream:
                response.read()
                response.close()
            raise _api_error(response)
        return response

    def _send_once(self, method: str, path: str, *, auth: bool, stream: bool,
                   **kwargs: Any) -> httpx2.Response:
        url = path if "://" in path else f"{self.url}{path}"
        headers = dict(kwargs.pop("headers", {}))
        if auth:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            request = self._http.build_request(method, url, headers=headers, **kwargs)
            return self._http.send(request, stream=stream)
        except httpx2.ConnectError as exc:
            raise ConnectionFailed(self.url, _reason(exc)) from exc
        except httpx2.ConnectTimeout as exc:
            raise ConnectionFailed(self.url, "timed out") from exc
        except httpx2.TimeoutException as exc:
            raise ClientError(f"{method} {url}: the server did not answer in time") from exc
        except httpx2.TransportError as exc:
            raise ClientError(f"{method} {url}: the connection broke off "
                              f"({_reason(exc)})") from exc

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError as exc:
            raise ApiError(response.status_code, f"{method} {path}: the server answered "
                           "something that is not JSON; is --url a Convertly server?") from exc
        if not isinstance(body, dict):
            raise ApiError(response.status_code, f"{method} {path}: unexpected answer {body!r}")
        return body

    # --- jobs ---

    def create_job(self, files: Sequence[Path], fields: Mapping[str, str], *,
                   idempotency_key: str | None = None,
                   on_sent: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """POST /api/jobs with `files` streamed from disk; answers {jobId, status}.
        `on_sent(sent, total)` follows the body's bytes as they leave."""
        body = MultipartBody(list(fields.items()), files)
        total = body.length()
        headers = {"Content-Type": body.content_type, "Content-Length": str(total)}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        progress = None if on_sent is None else (lambda sent: on_sent(sent, total))
        return self._json("POST", "/api/jobs", content=body.iter_bytes(progress),
                          headers=headers)

    def get_job(self, job_id: str, *, wait: float = 0.0) -> dict[str, Any]:
        """GET /api/jobs/{id}; with `wait` (seconds, up to 60) the server answers as soon as
        the job is finished, or after `wait` seconds with the job as it is then."""
        params = {"wait": f"{wait:.3f}"} if wait > 0 else None
        return self._json("GET", f"/api/jobs/{quote(job_id, safe='')}", params=params)

    def list_jobs(self, *, limit: int = 20, offset: int = 0,
                  status: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = status
        return self._json("GET", "/api/jobs", params=params)

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return self._json("DELETE", f"/api/jobs/{quote(job_id, safe='')}")

    def wait_job(self, job_id: str, *, on_update: Callable[[dict[str, Any]], None] | None = None,
                 timeout: float | None = None, interval: float = 1.0,
                 wait: float = LONG_WAIT) -> dict[str, Any]:
        """Wait until the job is completed or failed, each request waiting up to `wait`
        seconds on the server, which answers the moment the job finishes (a shorter `wait`
        means more frequent `on_update(job)` calls, after each answer). A server that
        answers at once (one without `?wait=`) is polled instead, quickly at first, then
        every `interval` seconds. Raises ClientError when `timeout` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.05
        while True:
            asked = time.monotonic()
            step = wait if deadline is None else min(wait, deadline - asked)
            job = self.get_job(job_id, wait=max(step, 0.0))
            if on_update is not None:
                on_update(job)
            if job.get("status") in FINISHED:
                return job
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise ClientError(f"job {job_id} is still {job.get('status')} after "
                                  f"{timeout:g} s")
            if now - asked < step / 2:  # the server did not wait: poll
                time.sleep(delay)
                delay = min(delay * 2, interval)

    # --- storage ---

    def list_files(self, *, folder: str | None = None, search: str | None = None,
                   limit: int | None = None, offset: int | None = None) -> dict[str, Any]:
        """GET /api/files: {files, pagination}. `folder` "null" means the root folder."""
        params = {"folderId": folder, "q": search, "limit": limit, "offset": offset}
        return self._json("GET", "/api/files",
                          params={k: v for k, v in params.items() if v is not None})

    def get_file(self, file_id: str) -> dict[str, Any]:
        """GET /api/files/{id}: {file: {..., download_url, expiresIn}}."""
        return self._json("GET", f"/api/files/{quote(file_id, safe='')}",
                          headers={"Accept": "application/json"})

    def delete_file(self, file_id: str) -> dict[str, Any]:
        return self._json("DELETE", f"/api/files/{quote(file_id, safe='')}")

    # --- downloads ---

    def download(self, url: str, directory: Path, filename: str, *,
                 on_start: Callable[[int | None], None] | None = None,
                 on_received: Callable[[int], None] | None = None) -> Path:
        """Save what `url` (a signed link or a data: URL) holds as `filename` in `directory`
        without overwriting anything; answers the path written. `on_start(size or None)`
        once the size is known, `on_received(bytes so far)` while it streams."""
        path, fh = reserve(directory, safe_filename(filename))
        try:
            with fh:
                if url.startswith("data:"):
                    data = base64.b64decode(url.partition(",")[2])
                    if on_start is not None:
                        on_start(len(data))
                    fh.write(data)
                    if on_received is not None:
                        on_received(len(data))
                    return path
                if not url.startswith(("http://", "https://")):
                    url = f"{self.url}/{url.lstrip('/')}"
                response = self._send("GET", url, auth=False, stream=True)
                try:
                    length = response.headers.get("content-length")
                    if on_start is not None:
                        on_start(int(length) if length and length.isdigit() else None)
                    received = 0
                    try:
                        for chunk in response.iter_bytes(CHUNK):
                            fh.write(chunk)
                            received += len(chunk)
                            if on_received is not None:
                                on_received(received)
                    except httpx2.TransportError as exc:
                        raise ClientError(f"the download of {path.name} broke off after "
                                          f"{received} bytes ({_reason(exc)})") from exc
                finally:
                    response.close()
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path


def _reason(exc: BaseException) -> str:
    """A short reason from the OS error under a transport error (httpx2 -> httpcore2 ->
    socket), rather than the wrapped message."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return "unknown host"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


def _retry_after(response: httpx2.Response) -> float | None:
    """The seconds a 429 asks to wait (Retry-After, whole seconds), when they are few enough
    to wait here; None otherwise."""
    raw = response.headers.get("retry-after", "")
    if response.status_code != 429 or not raw.isascii() or not raw.isdigit():
        return None
    seconds = int(raw)
    return float(seconds) if seconds <= RETRY_AFTER_MAX else None


def _api_error(response: httpx2.Response) -> ApiError:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        code = body.get("code")
        detail = body.get("detail")
        return ApiError(status, body["error"], code if isinstance(code, str) else None,
                        detail if isinstance(detail, dict) else None)
    snippet = " ".join(response.text.split())[:200]
    reason = response.reason_phrase or "error"
    return ApiError(status, f"the server answered {status} {reason}"
                    + (f": {snippet}" if snippet else ""))
