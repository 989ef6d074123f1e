"""What each API call sends and how its answer is read, shared by the sync and the async
client (which only differ in how they send)."""

from __future__ import annotations

import base64
import email.utils
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote, unquote_to_bytes

import httpx

from convertly_client._body import MultipartBody, Upload
from convertly_client.errors import ApiError, ClientError, ConnectionFailed
from convertly_client.models import (
    Conversion,
    FileList,
    Folder,
    Job,
    JobCreated,
    JobList,
    StoredFile,
    Webhook,
    options_fields,
)

T = TypeVar("T")

TIMEOUT = httpx.Timeout(300.0, connect=10.0)
LONG_WAIT = 30.0  # seconds one job request may wait on the server (it allows up to 60)
# A 429 (rate limit) or 503 (queue full, unavailable) to a request that can be sent again
# is retried after its Retry-After, RETRIES times, when that is at most RETRY_AFTER_MAX.
RETRIES = 3
RETRY_AFTER_MAX = 60.0
_RETRIED_STATUSES = frozenset({429, 503})
_REPEATABLE = frozenset({"GET", "HEAD", "DELETE", "PUT"})


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request: what to send and how to read a successful answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    body: MultipartBody | None = None
    headers: Mapping[str, str] | None = None
    # Sending it twice does no more than once (GET, DELETE, a job with an Idempotency-Key).
    repeatable: bool = False

    @property
    def retried(self) -> bool:
        return self.repeatable or self.method in _REPEATABLE


def _id(value: str) -> str:
    return quote(value, safe="")


def _object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise ApiError(response.status_code, f"{response.request.method} "
                       f"{response.request.url.path}: the server answered something that is "
                       "not JSON; is the URL a Convertly server?") from exc
    if not isinstance(body, dict):
        raise ApiError(response.status_code, f"unexpected answer {body!r}")
    return body


def _nothing(response: httpx.Response) -> None:
    return None


# --- sync conversions -----------------------------------------------------------------


def conversion(path: str, files: Sequence[Upload], options: Mapping[str, Any],
               per_file: Sequence[Mapping[str, Any]] | None, source_url: str | None,
               save_to_storage: bool) -> Call[Conversion]:
    fields = options_fields(options, per_file)
    if source_url is not None:
        fields.append(("sourceUrl", source_url))
    if save_to_storage:
        fields.append(("saveToStorage", "true"))
    return Call("POST", path, lambda r: Conversion.from_wire(_object(r)),
                body=MultipartBody(fields, list(files)))


# --- jobs ----------------------------------------------------------------------------------


def create_job(files: Sequence[Upload], options: Mapping[str, Any],
               per_file: Sequence[Mapping[str, Any]] | None, *, job_type: str | None,
               source_url: str | None, create_archive: bool, archive_format: str | None,
               priority: str | None, callback_url: str | None, callback_secret: str | None,
               fields: Mapping[str, str] | None, idempotency_key: str | None
               ) -> Call[JobCreated]:
    form = [(k, v) for k, v in (fields or {}).items()]
    form += options_fields(options, per_file)
    extra = {"jobType": job_type, "sourceUrl": source_url,
             "createArchive": "true" if create_archive else None,
             "archiveFormat": archive_format, "priority": priority,
             "callbackUrl": callback_url, "callbackSecret": callback_secret}
    form += [(k, v) for k, v in extra.items() if v is not None]
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None

    def parse(response: httpx.Response) -> JobCreated:
        body = _object(response)
        return JobCreated(job_id=str(body.get("jobId")), status=str(body.get("status")),
                          replayed=response.headers.get("idempotent-replayed") == "true")

    return Call("POST", "/api/jobs", parse, body=MultipartBody(form, list(files)),
                headers=headers, repeatable=bool(idempotency_key))


def queue_tool(tool: str, files: Sequence[Upload], options: Mapping[str, str],
               source_url: str | None, idempotency_key: str | None) -> Call[JobCreated]:
    """POST /api/media/{tool} with async=true: the tool's job."""
    form = [(k, v) for k, v in options.items()] + [("async", "true")]
    if source_url is not None:
        form.append(("sourceUrl", source_url))
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None

    def parse(response: httpx.Response) -> JobCreated:
        body = _object(response)
        return JobCreated(job_id=str(body.get("jobId")), status=str(body.get("status")),
                          replayed=response.headers.get("idempotent-replayed") == "true")

    return Call("POST", f"/api/media/{_id(tool)}", parse,
                body=MultipartBody(form, list(files), file_field="file"), headers=headers,
                repeatable=bool(idempotency_key))


def get_job(job_id: str, wait: float) -> Call[Job]:
    params = {"wait": f"{wait:.3f}"} if wait > 0 else None
    return Call("GET", f"/api/jobs/{_id(job_id)}", lambda r: Job.from_wire(_object(r)),
                params=params)


def list_jobs(limit: int, offset: int, status: str | None) -> Call[JobList]:
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if status:
        params["status"] = status
    return Call("GET", "/api/jobs", lambda r: JobList.from_wire(_object(r)), params=params)


def cancel_job(job_id: str) -> Call[Job]:
    return Call("DELETE", f"/api/jobs/{_id(job_id)}", lambda r: Job.from_wire(_object(r)))


class WaitClock:
    """The rhythm of waiting for a job: each request waits up to `wait` seconds on the
    server, which answers the moment the job finishes; a server that answers at once (one
    without `?wait=`) is polled instead, quickly at first, then every `interval` seconds."""

    def __init__(self, job_id: str, timeout: float | None, wait: float,
                 interval: float) -> None:
        self.job_id = job_id
        self.timeout = timeout
        self.wait = wait
        self.interval = interval
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.delay = 0.05
        self.asked = 0.0
        self.step = 0.0

    def next_wait(self) -> float:
        """The `?wait=` of the next request."""
        self.asked = time.monotonic()
        self.step = self.wait if self.deadline is None else min(self.wait,
                                                                self.deadline - self.asked)
        return max(self.step, 0.0)

    def pause_after(self, job: Job) -> float:
        """Seconds to sleep before asking again; raises ClientError past the timeout."""
        now = time.monotonic()
        if self.deadline is not None and now >= self.deadline:
            raise ClientError(f"job {self.job_id} is still {job.status} after "
                              f"{self.timeout:g} s")
        if now - self.asked < self.step / 2:  # the server did not wait: poll
            pause = self.delay
            self.delay = min(self.delay * 2, self.interval)
            return pause
        return 0.0


def outputs(job: Job) -> list[tuple[str, str]]:
    """(download URL, file name) of what a finished job made: its archive when it has one,
    else each completed file's output."""
    if job.archive is not None and job.archive.download_url:
        return [(job.archive.download_url, job.archive.filename)]
    return [(r.download_url, r.output_filename or r.filename or "output")
            for r in job.results if r.download_url]


# --- transfers -----------------------------------------------------------------------------


def transfer_body(source_url: str | None, *, cloud_source: Mapping[str, Any] | None,
                  destination: str, filename: str | None, content_type: str | None,
                  wait: bool, extract: bool, extract_options: Mapping[str, Any] | None
                  ) -> dict[str, Any]:
    """The JSON of POST /api/transfer, in Convertly's names (`TransferOptions`)."""
    body: dict[str, Any] = {"destination": destination}
    optional = {"sourceUrl": source_url,
                "cloudSource": dict(cloud_source) if cloud_source is not None else None,
                "filename": filename, "contentType": content_type,
                "async": False if wait else None, "extract": True if extract else None,
                "extractOptions": dict(extract_options) if extract_options else None}
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def transfer(body: Mapping[str, Any]) -> Call[dict[str, Any]]:
    """POST /api/transfer into storage: the 202 `{jobId, status, mode}` of a queued file, or
    the 200 `{file, files, ...}` of one that waited (or was extracted)."""
    return Call("POST", "/api/transfer", _object, json=dict(body))


def transfer_download(body: Mapping[str, Any]) -> Call[httpx.Response]:
    """POST /api/transfer with destination download: the answer is the file."""
    return Call("POST", "/api/transfer", lambda r: r, json=dict(body))


def attachment_name(response: httpx.Response, fallback: str) -> str:
    """The file name a Content-Disposition answer gives (RFC 6266 filename*, else filename)."""
    header = response.headers.get("content-disposition", "")
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "filename*" and "''" in value:
            return unquote_to_bytes(value.split("''", 1)[1]).decode("utf-8", "replace")
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "filename" and value:
            return str(value).strip('"')
    return fallback


# --- storage -------------------------------------------------------------------------------


def upload_files(files: Sequence[Upload], folder_id: str | None) -> Call[list[StoredFile]]:
    fields = [("folderId", folder_id)] if folder_id else []
    return Call("POST", "/api/files",
                lambda r: [StoredFile.from_wire(f) for f in _object(r).get("files") or []],
                body=MultipartBody(fields, list(files)))


def list_files(folder: str | None, search: str | None, limit: int | None,
               offset: int | None) -> Call[FileList]:
    """`folder` "null" means the root folder only."""
    params = {"folderId": folder, "q": search, "limit": limit, "offset": offset}
    return Call("GET", "/api/files", lambda r: FileList.from_wire(_object(r)),
                params={k: v for k, v in params.items() if v is not None})


def get_file(file_id: str) -> Call[StoredFile]:
    return Call("GET", f"/api/files/{_id(file_id)}",
                lambda r: StoredFile.from_wire(_object(r).get("file") or {}),
                headers={"Accept": "application/json"})


def delete_file(file_id: str) -> Call[None]:
    return Call("DELETE", f"/api/files/{_id(file_id)}", _nothing)


def list_folders() -> Call[list[Folder]]:
    return Call("GET", "/api/folders",
                lambda r: [Folder.from_wire(f) for f in _object(r).get("folders") or []])


def create_folder(name: str, color: str | None, parent_id: str | None) -> Call[Folder]:
    body: dict[str, Any] = {"name": name}
    if color is not None:
        body["color"] = color
    if parent_id is not None:
        body["parentId"] = parent_id
    return Call("POST", "/api/folders",
                lambda r: Folder.from_wire(_object(r).get("folder") or {}), json=body)


def delete_folder(folder_id: str) -> Call[None]:
    return Call("DELETE", f"/api/folders/{_id(folder_id)}", _nothing)


# --- webhooks ------------------------------------------------------------------------------


def create_webhook(url: str, events: Sequence[str] | None) -> Call[Webhook]:
    body: dict[str, Any] = {"url": url}
    if events is not None:
        body["events"] = list(events)
    return Call("POST", "/api/webhooks", lambda r: Webhook.from_wire(_object(r)), json=body)


def list_webhooks() -> Call[list[Webhook]]:
    return Call("GET", "/api/webhooks",
                lambda r: [Webhook.from_wire(w) for w in _object(r).get("webhooks") or []])


def delete_webhook(webhook_id: str) -> Call[None]:
    return Call("DELETE", f"/api/webhooks/{_id(webhook_id)}", _nothing)


# --- answers -------------------------------------------------------------------------------


def data_url_bytes(url: str) -> bytes | None:
    """The bytes of a `data:` URL (small sync outputs come back inline), else None."""
    if not url.startswith("data:"):
        return None
    head, _, payload = url.partition(",")
    if head.endswith(";base64"):
        return base64.b64decode(payload)
    return unquote_to_bytes(payload)


def retry_after(response: httpx.Response) -> float | None:
    """The seconds Retry-After asks for (delta seconds or an HTTP date), else None."""
    raw = response.headers.get("retry-after", "").strip()
    if not raw:
        return None
    if raw.isascii() and raw.isdigit():
        return float(raw)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_delay(call: Call[Any], response: httpx.Response, attempt: int,
                retries: int) -> float | None:
    """Seconds to wait before sending `call` again after `response`, or None: only for
    429/503 to a repeatable request, with a Retry-After of at most RETRY_AFTER_MAX."""
    if (response.status_code not in _RETRIED_STATUSES or not call.retried
            or attempt >= retries):
        return None
    delay = retry_after(response)
    return delay if delay is not None and delay <= RETRY_AFTER_MAX else None


def api_error(response: httpx.Response) -> ApiError:
    """The error an error answer stands for (its body must have been read)."""
    status = response.status_code
    wait = retry_after(response)
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        code = body.get("code")
        detail = body.get("detail")
        return ApiError(status, body["error"], code if isinstance(code, str) else None,
                        detail if isinstance(detail, dict) else None, wait)
    snippet = " ".join(response.text.split())[:200]
    reason = response.reason_phrase or "error"
    return ApiError(status, f"the server answered {status} {reason}"
                    + (f": {snippet}" if snippet else ""), retry_after=wait)


def reason(exc: BaseException) -> str:
    """A short reason from the OS error under a transport error, rather than the wrapped
    message."""
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


def transport_error(exc: httpx.TransportError, base_url: str, method: str,
                    url: str) -> ClientError:
    """The ClientError a transport failure stands for (httpx's exceptions stay inside)."""
    if isinstance(exc, httpx.ConnectError):
        return ConnectionFailed(base_url, reason(exc))
    if isinstance(exc, httpx.ConnectTimeout):
        return ConnectionFailed(base_url, "timed out")
    if isinstance(exc, httpx.TimeoutException):
        return ClientError(f"{method} {url}: the server did not answer in time")
    return ClientError(f"{method} {url}: the connection broke off ({reason(exc)})")
