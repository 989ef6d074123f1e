"""Every setting, declared once: name, type, default, help. Read from the environment and `.env`.

This is the only module that reads the environment. `Settings.from_env()` parses and validates
everything at start-up and fails fast with a message naming the setting.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

log = logging.getLogger(__name__)


class Secret(str):
    """A string whose repr hides it (keys and secrets never land in logs)."""

    def __repr__(self) -> str:
        return "Secret('**********')" if self else "Secret('')"


class SettingsError(ValueError):
    """A setting is malformed. The message is one line: the setting's name, what is expected
    and the value given (a secret's hidden, a URL's password masked)."""


# -- parsers: each takes the raw text and returns the value, or raises ValueError("expected
# ...") saying what would be accepted; Settings.from_env adds the name and the value given.

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected true or false (or 1/0, yes/no, on/off)")


def _whole(raw: str, minimum: int, what: str = "a whole number") -> int:
    text = raw.strip().replace("_", "")
    if not re.fullmatch(r"[+-]?\d+", text) or int(text) < minimum:
        raise ValueError(f"expected {what} from {minimum}")
    return int(text)


def _positive_int(raw: str) -> int:
    return _whole(raw, 1)


def _non_negative_int(raw: str) -> int:
    return _whole(raw, 0)


def _real(raw: str, *, above_zero: bool) -> float:
    try:
        value = float(raw.strip().replace("_", ""))
    except ValueError:
        value = float("nan")
    if value != value or value == float("inf") or value < 0 or (above_zero and value == 0):
        raise ValueError("expected a number above 0" if above_zero else
                         "expected a number from 0")
    return value


def _positive_float(raw: str) -> float:
    return _real(raw, above_zero=True)


def _non_negative_float(raw: str) -> float:
    return _real(raw, above_zero=False)


def _path(raw: str) -> Path:
    return Path(raw.strip())


def _str(raw: str) -> str:
    return raw.strip()


def _secret(raw: str) -> Secret:
    return Secret(raw.strip())


def parse_port(raw: str) -> int:
    """A TCP port, 1 to 65535 (also for `convertly serve --port`)."""
    text = raw.strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError("expected a port from 1 to 65535")
    return int(text)


def _log_level(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"debug", "info", "warning", "error"}:
        raise ValueError("expected debug, info, warning or error")
    return value


_BYTE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_AMOUNT = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")


@dataclass(frozen=True)
class ByteSize:
    """A size: a whole number of `unit` bytes, or a number with a unit (`10MB`, `50GiB`,
    `512KiB`; kB, MB, GB, TB count in thousands, KiB, MiB, GiB, TiB in 1024s)."""

    minimum: int = 1
    unit: int = 1  # what a plain number counts (1024: KiB)

    def __call__(self, raw: str) -> int:
        text = raw.strip().replace("_", "").lower()
        match = _AMOUNT.fullmatch(text)
        plain = "bytes" if self.unit == 1 else f"{self.unit}-byte units"
        expected = (f"expected a size from {self.minimum}: a whole number of {plain}, or a "
                    "number with a unit (10MB, 512KiB, 50GiB)")
        if match is None or match[2] not in _BYTE_UNITS or (not match[2] and "." in match[1]):
            raise ValueError(expected)
        number, unit = match[1], match[2]
        value = int(number) if not unit else int(float(number) * _BYTE_UNITS[unit]) // self.unit
        if value < self.minimum:
            raise ValueError(expected)
        return value


_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86_400}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


@dataclass(frozen=True)
class Duration:
    """A duration: a number of seconds, or with units (`30s`, `15m`, `24h`, `7d`, `1h30m`,
    `500ms`). `whole`: the setting counts whole seconds."""

    minimum: float = 0.0
    above_zero: bool = True
    whole: bool = False

    def __call__(self, raw: str) -> Any:
        text = raw.strip().replace("_", "").replace(" ", "").lower()
        bound = f"above {self.minimum:g}" if self.above_zero else f"from {self.minimum:g}"
        kind = "whole seconds" if self.whole else "seconds"
        expected = (f"expected a duration {bound}: {kind}, or with units (30s, 15m, 24h, 7d, "
                    "1h30m)")
        value: float | None = None
        if re.fullmatch(r"\d+(\.\d+)?", text):
            value = float(text)
        elif text and _DURATION_PART.sub("", text) == "":
            value = sum(float(n) * _SECONDS[u] for n, u in _DURATION_PART.findall(text))
        if (value is None or value < self.minimum or (self.above_zero and value == self.minimum)
                or (self.whole and not value.is_integer())):
            raise ValueError(expected)
        return int(value) if self.whole else value


def _http_url(raw: str) -> str:
    """An http(s) URL with a host and an optional path (no query, no fragment)."""
    text = raw.strip()
    parts = urlsplit(text)
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.query
            or parts.fragment or parts.username is not None or _bad_port(parts)
            or any(c.isspace() for c in text)):
        raise ValueError("expected an http:// or https:// URL with a host (e.g. "
                         "https://convert.example.com)")
    return text


def _bad_port(parts: SplitResult) -> bool:
    try:
        port = parts.port
    except ValueError:
        return True
    return port == 0 or parts.netloc.endswith(":")


def _redis(raw: str, schemes: tuple[str, ...]) -> str:
    text = raw.strip()
    parts = urlsplit(text)
    good = parts.scheme in schemes and not any(c.isspace() for c in text)
    if parts.scheme in ("redis", "rediss"):
        good = good and bool(parts.hostname) and not _bad_port(parts) and bool(
            re.fullmatch(r"/?(\d+)?", parts.path))
    elif parts.scheme == "unix":
        good = good and parts.path.startswith("/") and not parts.netloc
    good = good and all(re.fullmatch(r"\d+", v) for k, v in parse_qsl(parts.query) if k == "db")
    if not good:
        forms = "redis://[:password@]host[:port][/db] or rediss://..."
        if "unix" in schemes:
            forms += " or unix:///path/to/redis.sock"
        raise ValueError(f"expected a Redis URL: {forms}")
    return text


def _broker_url(raw: str) -> str:
    # Celery (kombu) and redis-py both read this URL: they share no unix-socket form.
    return _redis(raw, ("redis", "rediss"))


def _state_url(raw: str) -> str:
    return _redis(raw, ("redis", "rediss", "unix"))


def _s3_endpoint(raw: str) -> str:
    text = raw.strip()
    if not _is_host_port(text):
        raise ValueError("expected host:port (e.g. minio:9000) with no http:// and no path "
                         "(for HTTPS set CONVERTLY_S3_SECURE=true)")
    return text


def _s3_public_url(raw: str) -> str:
    text = _http_url(raw)
    if urlsplit(text).path not in ("", "/"):
        raise ValueError("expected http(s)://host[:port] with no path")
    return text


def _default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def shown(value: str, *, secret: bool = False) -> str:
    """A value as an error message shows it: quoted on one line, a secret hidden, a URL's
    password masked, a long value cut."""
    if secret:
        return "'**********'" if value else "''"
    parts = urlsplit(value)
    if "://" in value and parts.password:
        value = value.replace(f":{parts.password}@", ":****@", 1)
    text = repr(value)
    return text if len(text) <= 120 else text[:116] + "...'"


def setting(
    env: str, default: Any, help: str, parse: Callable[[str], Any] = _str
) -> Any:
    """Declare one setting: its environment variable, default, help text and parser."""
    meta = {"env": env, "help": help, "parse": parse}
    if callable(default) and not isinstance(default, type):
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    """The service's configuration. Build it with `Settings.from_env()` or directly in tests."""

    data_dir: Path = setting(
        "CONVERTLY_DATA_DIR", Path("data"), "Where local storage, the job database and "
        "the server secret live.", _path,
    )
    min_free_bytes: int = setting(
        "CONVERTLY_MIN_FREE_BYTES", 256 * 1024 * 1024, "Free space in bytes below which /healthz "
        "reports the data directory's disk (uploads, scratch files, local storage, the job "
        "database) as degraded, before writes start failing with 507 STORAGE_FULL. 0 turns "
        "the check off.", ByteSize(0),
    )
    host: str = setting("CONVERTLY_HOST", "127.0.0.1", "Address `convertly serve` binds to.")
    port: int = setting("CONVERTLY_PORT", 8000, "Port `convertly serve` listens on.",
                        parse_port)
    # Client connections of `convertly serve` (convertly/connections.py).
    header_timeout: float = setting(
        "CONVERTLY_HEADER_TIMEOUT", 20.0,
        "Seconds a client of `convertly serve` gets to send a request's headers, counted "
        "from the connection's opening or the end of the previous response, however "
        "slowly they trickle in; then the connection is closed.", Duration(),
    )
    body_timeout: float = setting(
        "CONVERTLY_BODY_TIMEOUT", 60.0,
        "Seconds a request body may go without a byte arriving while the server is ready "
        "to read it; then the connection is closed. A slow upload that keeps sending is "
        "never cut.", Duration(),
    )
    keepalive_timeout: float = setting(
        "CONVERTLY_KEEPALIVE_TIMEOUT", 5.0,
        "Seconds an idle connection is kept open for the client's next request.", Duration(),
    )
    max_connections_per_address: int = setting(
        "CONVERTLY_MAX_CONNECTIONS_PER_ADDRESS", 64,
        "Connections one client address may hold open at once to `convertly serve`; the "
        "next one is answered 429 TOO_MANY_CONNECTIONS and closed. 0: no cap. Behind a "
        "reverse proxy every connection comes from the proxy: set 0 and cap connections "
        "per client at the proxy.", _non_negative_int,
    )
    public_url: str = setting(
        "CONVERTLY_PUBLIC_URL", "", "Base URL used in download links (e.g. "
        "https://convert.example.com). Empty: taken from each request's Host header.", _http_url,
    )
    secret_key: Secret = setting(
        "CONVERTLY_SECRET_KEY", Secret(""), "Signs download URLs. Empty: a random key is "
        "created once in the data directory.", _secret,
    )
    secret_keys_old: Secret = setting(
        "CONVERTLY_SECRET_KEYS_OLD", Secret(""), "Previous values of CONVERTLY_SECRET_KEY "
        "(comma-separated) whose download and upload links are still accepted: to rotate, "
        "move the current key here and set a new one; new links are signed with the new "
        "key. Drop an old key once its links have expired (CONVERTLY_DOWNLOAD_URL_TTL).",
        _secret,
    )
    workers: int = setting(
        "CONVERTLY_WORKERS", _default_workers, "Conversion processes of the embedded "
        "executor (default: one per CPU core). Each runs libvips with CPU cores ÷ processes "
        "threads, at least one (VIPS_CONCURRENCY overrides).", _positive_int,
    )
    max_file_bytes: int = setting(
        "CONVERTLY_MAX_FILE_BYTES", 500 * 1024 * 1024, "Largest accepted upload in bytes, per "
        "file (enforced while the body streams in).", ByteSize(),
    )
    max_files: int = setting(
        "CONVERTLY_MAX_FILES", 100, "Most files accepted in one request.", _positive_int,
    )
    max_request_bytes: int = setting(
        "CONVERTLY_MAX_REQUEST_BYTES", 2 * 1024 * 1024 * 1024, "Largest accepted request "
        "body in bytes (all files together).", ByteSize(),
    )
    max_pixels: int = setting(
        "CONVERTLY_MAX_PIXELS", 100_000_000, "Largest image accepted, in pixels (width × "
        "height × frames), checked from the header before decoding.", _positive_int,
    )
    max_pdf_pages: int = setting(
        "CONVERTLY_MAX_PDF_PAGES", 500, "Most pages read from or written to one PDF.",
        _positive_int,
    )
    pdf_dpi: int = setting(
        "CONVERTLY_PDF_DPI", 150, "Resolution PDF pages are rendered at; lowered for a page "
        "that would go over the pixel limit.", _positive_int,
    )
    max_media_seconds: int = setting(
        "CONVERTLY_MAX_MEDIA_SECONDS", 4 * 3600, "Longest audio or video accepted, in "
        "seconds: the duration the file declares is checked before converting, and no output "
        "is longer (a file whose header understates its length fails with MEDIA_TOO_LONG once "
        "ffmpeg reads past the limit).", Duration(whole=True),
    )
    trace_timeout: int = setting(
        "CONVERTLY_TRACE_TIMEOUT", 60, "Longest a raster-to-SVG trace may run, in seconds.",
        Duration(whole=True),
    )
    max_archive_entries: int = setting(
        "CONVERTLY_MAX_ARCHIVE_ENTRIES", 10_000, "Most entries read from one archive.",
        _positive_int,
    )
    max_extracted_bytes: int = setting(
        "CONVERTLY_MAX_EXTRACTED_BYTES", 8 * 1024 * 1024 * 1024, "Most bytes extracted from "
        "one archive (guards against archive bombs).", ByteSize(),
    )
    max_expansion_ratio: int = setting(
        "CONVERTLY_MAX_EXPANSION_RATIO", 100, "Most bytes extracted from an archive per byte "
        "of the archive, once past 16 MiB (guards against archive bombs long before "
        "CONVERTLY_MAX_EXTRACTED_BYTES).", _positive_int,
    )
    rar_command: str = setting(
        "CONVERTLY_RAR_COMMAND", "", "Path to the proprietary `rar` program. Empty: RAR output "
        "is refused (RAR input works through unar).",
    )
    background_model: str = setting(
        "CONVERTLY_BACKGROUND_MODEL", "", "Path to an ONNX segmentation model (U2-Net, "
        "IS-Net and alike: one RGB image in, a foreground mask out) that remove-background "
        "runs on the image workers. Empty: remove-background answers 501 FEATURE_UNAVAILABLE.",
    )
    max_queued_files: int = setting(
        "CONVERTLY_MAX_QUEUED_FILES", 10_000, "Files waiting for a worker before new jobs "
        "get 503 QUEUE_FULL.", _positive_int,
    )
    data_url_max_bytes: int = setting(
        "CONVERTLY_DATA_URL_MAX_BYTES", 2 * 1024 * 1024, "Sync outputs up to this many bytes come "
        "back inline as a data: URL when not saved to storage; larger ones as a short-lived "
        "stored copy behind a signed link.", ByteSize(0),
    )
    download_url_ttl: int = setting(
        "CONVERTLY_DOWNLOAD_URL_TTL", 3600, "Seconds a signed download link stays valid.",
        Duration(whole=True),
    )
    temporary_ttl: int = setting(
        "CONVERTLY_TEMPORARY_TTL", 3600, "Seconds a short-lived copy of a large sync output "
        "(not saved to storage) is kept.", Duration(whole=True),
    )
    idempotency_ttl: int = setting(
        "CONVERTLY_IDEMPOTENCY_TTL", 86_400, "Seconds an Idempotency-Key maps to its job.",
        Duration(whole=True),
    )
    upload_url_ttl: int = setting(
        "CONVERTLY_UPLOAD_URL_TTL", 3600, "Seconds a direct-upload URL (POST /api/uploads) "
        "stays valid; an upload not completed within twice this time is deleted.",
        Duration(whole=True),
    )
    log_level: str = setting("CONVERTLY_LOG_LEVEL", "info", "debug, info, warning or error.",
                             _log_level)
    # Observability (convertly/metrics.py, convertly/logs.py, convertly/tracing.py).
    log_format: str = setting(
        "CONVERTLY_LOG_FORMAT", "auto", "Log lines as `text` or `json` (one JSON object a "
        "line, with request_id, tenant and job_id where known); `auto`: text when stderr is "
        "a terminal, JSON otherwise.",
    )
    metrics_dir: str = setting(
        "CONVERTLY_METRICS_DIR", "", "Directory where the processes of one host (API "
        "processes, the embedded pool, a worker's processes) keep their Prometheus counts "
        "for /metrics; files of processes no longer running are removed at start. Empty: "
        "`metrics/` under the data directory.",
    )
    metrics_token: Secret = setting(
        "CONVERTLY_METRICS_TOKEN", Secret(""), "When set, GET /metrics wants "
        "`Authorization: Bearer <token>`; empty: /metrics is open to whoever reaches the "
        "listening address.", _secret,
    )
    otlp_endpoint: str = setting(
        "CONVERTLY_OTLP_ENDPOINT", "", "OpenTelemetry tracing (needs `pip install "
        "'convertly[otel]'`): the OTLP/HTTP traces URL spans are sent to, e.g. "
        "http://collector:4318/v1/traces. Empty: no tracing.",
    )
    otel_service_name: str = setting(
        "CONVERTLY_OTEL_SERVICE_NAME", "convertly", "The service.name of this process's "
        "spans (e.g. convertly-api, convertly-worker).",
    )
    worker_metrics_port: int = setting(
        "CONVERTLY_WORKER_METRICS_PORT", 0, "Port on which `convertly worker` serves its "
        "conversion metrics for Prometheus (all interfaces); 0: not served.",
        _non_negative_int,
    )
    job_retention: int = setting(
        "CONVERTLY_JOB_RETENTION", 86_400, "Seconds after completion when a job is deleted "
        "with its sources, archive and outputs, except the outputs of a job sent with "
        "saveToStorage=true: those stay as stored files until deleted. 0 keeps every job.",
        Duration(above_zero=False, whole=True),
    )

    # Distributed mode: set CONVERTLY_BROKER_URL for Celery workers, CONVERTLY_S3_ENDPOINT
    # for S3 storage. Either one alone works too.
    broker_url: str = setting(
        "CONVERTLY_BROKER_URL", "", "Redis URL of the Celery broker (e.g. "
        "redis://127.0.0.1:6379/0). Set: jobs run on Celery workers and job state lives in "
        "Redis. Empty: the embedded process pool and SQLite.", _broker_url,
    )
    state_url: str = setting(
        "CONVERTLY_STATE_URL", "", "Redis URL for job state, API keys and file records in "
        "distributed mode; empty means the broker's Redis (CONVERTLY_BROKER_URL).", _state_url,
    )
    s3_endpoint: str = setting(
        "CONVERTLY_S3_ENDPOINT", "", "host:port of MinIO or any S3 service (e.g. minio:9000; "
        "no http://, and for HTTPS set CONVERTLY_S3_SECURE=true). Set: sources and outputs "
        "live in that bucket. Empty: local disk under CONVERTLY_DATA_DIR.", _s3_endpoint,
    )
    s3_access_key: Secret = setting(
        "CONVERTLY_S3_ACCESS_KEY", Secret(""), "S3 access key. Empty (with an empty "
        "CONVERTLY_S3_SECRET_KEY): the standard chain, first that has them: "
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a web identity token "
        "(AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, through STS), the ECS container role, "
        "the instance role (IMDSv2).", _secret)
    s3_secret_key: Secret = setting("CONVERTLY_S3_SECRET_KEY", Secret(""), "S3 secret key.",
                                    _secret)
    s3_credentials_endpoint: str = setting(
        "CONVERTLY_S3_CREDENTIALS_ENDPOINT", "", "Without a key pair: the URL asked for "
        "temporary credentials instead of AWS's (the STS for a web identity token, else the "
        "instance metadata service), e.g. another S3 service's STS.")
    s3_bucket: str = setting("CONVERTLY_S3_BUCKET", "convertly", "S3 bucket (created when "
                             "missing).")
    s3_secure: bool = setting("CONVERTLY_S3_SECURE", False, "Use HTTPS to reach S3.", _bool)
    s3_sign_payload: bool = setting(
        "CONVERTLY_S3_SIGN_PAYLOAD", True, "Over plain HTTP, sign the SHA-256 of every "
        "upload to S3, so it cannot be altered on the way. false sends bodies unsigned "
        "(UNSIGNED-PAYLOAD, as over HTTPS; requests stay signed), which saves hashing every "
        "byte here and on MinIO: for a private network.", _bool)
    s3_region: str = setting("CONVERTLY_S3_REGION", "", "S3 region (empty: the service's "
                             "default).")
    s3_public_url: str = setting(
        "CONVERTLY_S3_PUBLIC_URL", "", "Base URL clients use to reach the S3 service for "
        "direct uploads (e.g. https://s3.example.com) when CONVERTLY_S3_ENDPOINT is an "
        "internal address. Empty: CONVERTLY_S3_ENDPOINT.", _s3_public_url,
    )
    image_queue: str = setting("CONVERTLY_IMAGE_QUEUE", "image", "Celery queue for image and "
                               "vector conversions.")
    media_queue: str = setting("CONVERTLY_MEDIA_QUEUE", "media", "Celery queue for audio and "
                               "video conversions.")
    archive_queue: str = setting("CONVERTLY_ARCHIVE_QUEUE", "archive", "Celery queue for "
                                 "archives and for finishing jobs (bundling outputs).")
    worker_queues: str = setting(
        "CONVERTLY_WORKER_QUEUES", "image,media,archive", "Queues `convertly worker` consumes "
        "(comma-separated), unless --queues is given.",
    )
    worker_concurrency: int = setting(
        "CONVERTLY_WORKER_CONCURRENCY", _default_workers, "Processes per `convertly worker` "
        "(default: one per CPU core), unless --concurrency is given. Each runs libvips with "
        "CPU cores ÷ processes threads (VIPS_CONCURRENCY overrides: set it when several "
        "workers share a host).", _positive_int,
    )
    task_soft_time_limit: int = setting(
        "CONVERTLY_TASK_SOFT_TIME_LIMIT", 600, "Seconds before a conversion task is asked to "
        "stop (the file fails with a clear error).", Duration(whole=True),
    )
    task_time_limit: int = setting(
        "CONVERTLY_TASK_TIME_LIMIT", 660, "Seconds before a conversion task's process is "
        "killed and replaced.", Duration(whole=True),
    )
    sync_queue_timeout: int = setting(
        "CONVERTLY_SYNC_QUEUE_TIMEOUT", 60, "Distributed mode: seconds a sync conversion "
        "(/api/convert, /api/compress) waits for a worker to take it. Then it answers 503 "
        "QUEUE_TIMEOUT with a retry hint, and no worker converts it later.", Duration(whole=True),
    )
    worker_lease: int = setting(
        "CONVERTLY_WORKER_LEASE", 30, "Distributed mode: seconds a worker's heartbeat lasts. "
        "The files a worker held when it vanished (its host lost, its processes killed) go "
        "back to their queues once it has been silent this long.", Duration(whole=True),
    )
    watchdog_interval: float = setting(
        "CONVERTLY_WATCHDOG_INTERVAL", 30.0, "Seconds between two looks of the job watchdog "
        "(both modes; one API process at a time) for job files that are pending with no "
        "queue entry, no live holder and no recent progress (lost). Default: a worker lease.",
        Duration(),
    )
    watchdog_stale: float = setting(
        "CONVERTLY_WATCHDOG_STALE", 60.0, "Seconds the watchdog must have seen a file lost, "
        "its progress unchanged, before it queues the file again, logs it and counts it. "
        "Default: two worker leases, so that a file on its way between queue and worker is "
        "never taken for lost. A lost file is queued again within this plus two intervals.",
        Duration(),
    )
    worker_max_tasks_per_child: int = setting(
        "CONVERTLY_WORKER_MAX_TASKS_PER_CHILD", 200, "Tasks a worker process runs before it "
        "is replaced (native libraries fragment memory).", _positive_int,
    )
    worker_max_memory_per_child: int = setting(
        "CONVERTLY_WORKER_MAX_MEMORY_PER_CHILD", 1_000_000, "KiB of resident memory after "
        "which a worker process is replaced once its task ends.", ByteSize(unit=1024),
    )
    task_max_memory: int = setting(
        "CONVERTLY_TASK_MAX_MEMORY", 2 * 1024 * 1024 * 1024, "Bytes of memory a conversion "
        "process may allocate (its data segment, also for the programs it runs), in both "
        "modes. A file that needs more fails with 413 MEMORY_LIMIT; the process goes on.",
        ByteSize(),
    )
    task_cpu_seconds: int = setting(
        "CONVERTLY_TASK_CPU_SECONDS", 300, "CPU seconds one conversion may use in its "
        "worker process (all threads; ffmpeg and other programs have their own timeouts), in "
        "both modes. Then the file fails with 422 CONVERSION_TIMEOUT; a process that does "
        "not stop within 10 s more is killed and replaced.", Duration(whole=True),
    )

    # The client commands (`convertly convert`, `jobs`, `files`): which server, which key.
    url: str = setting(
        "CONVERTLY_URL", "http://127.0.0.1:8000", "Server the client commands (`convertly "
        "convert`, `jobs`, `files`) talk to, unless --url is given.", _http_url,
    )
    api_key: Secret = setting(
        "CONVERTLY_API_KEY", Secret(""), "API key the client commands send, unless --api-key "
        "is given.", _secret,
    )

    # Source URLs: files fetched from a `sourceUrl` instead of uploaded.
    fetch_allow_private: bool = setting(
        "CONVERTLY_FETCH_ALLOW_PRIVATE", False, "Fetch `sourceUrl` files from loopback, "
        "private, link-local and other non-public addresses too (only when every API client "
        "may reach your own network through this server).", _bool,
    )
    fetch_timeout: float = setting(
        "CONVERTLY_FETCH_TIMEOUT", 300.0, "Seconds a `sourceUrl` download may take in all: "
        "connecting, TLS, headers and body, redirects included (a server that trickles its "
        "answer is cut off then); the file size limit is CONVERTLY_MAX_FILE_BYTES.",
        Duration(),
    )

    # Outbound requests (webhooks, sourceUrl downloads) through an HTTP proxy.
    outbound_proxy: str = setting(
        "CONVERTLY_OUTBOUND_PROXY", "", "HTTP proxy for webhook deliveries and `sourceUrl` "
        "downloads, http://[user:password@]host:port (https URLs go through a CONNECT tunnel, "
        "TLS end to end). The proxy resolves the names, so it must refuse private addresses "
        "itself (see the README). Empty: HTTPS_PROXY, else HTTP_PROXY, from the environment; "
        "none of them: direct connections.",
    )
    outbound_no_proxy: str = setting(
        "CONVERTLY_OUTBOUND_NO_PROXY", "", "Hosts reached without CONVERTLY_OUTBOUND_PROXY, "
        "comma-separated: names (with their subdomains), addresses, networks (10.0.0.0/8), "
        "or * for all. Empty: NO_PROXY from the environment.",
    )

    # Webhooks: deliveries of job events to receivers' URLs.
    webhook_allow_private: bool = setting(
        "CONVERTLY_WEBHOOK_ALLOW_PRIVATE", False, "Deliver webhooks to loopback, private, "
        "link-local and other non-public addresses too (only for receivers on your own "
        "network; anyone who can create a webhook can then reach them).", _bool,
    )
    webhook_max_attempts: int = setting(
        "CONVERTLY_WEBHOOK_MAX_ATTEMPTS", 10, "Attempts per webhook delivery before it is "
        "marked failed (it can still be retried from the delivery log).", _positive_int,
    )
    webhook_retry_delay: float = setting(
        "CONVERTLY_WEBHOOK_RETRY_DELAY", 30.0, "Seconds before the first retry of a failed "
        "webhook delivery; each later retry waits twice as long as the one before.",
        Duration(),
    )
    webhook_retry_max_delay: float = setting(
        "CONVERTLY_WEBHOOK_RETRY_MAX_DELAY", 3600.0, "Longest wait between two attempts of a "
        "webhook delivery, in seconds.", Duration(),
    )
    webhook_timeout: float = setting(
        "CONVERTLY_WEBHOOK_TIMEOUT", 10.0, "Seconds one webhook attempt may take in all: "
        "connecting, TLS, sending the event and the receiver's status line and headers (a "
        "receiver that trickles its answer is cut off then, and the attempt failed).",
        Duration(),
    )
    webhook_progress_interval: float = setting(
        "CONVERTLY_WEBHOOK_PROGRESS_INTERVAL", 10.0, "Fewest seconds between two "
        "conversion.progress events of one job.", Duration(above_zero=False),
    )
    webhook_concurrency: int = setting(
        "CONVERTLY_WEBHOOK_CONCURRENCY", 8, "Webhook deliveries each API process sends at "
        "once.", _positive_int,
    )
    webhook_log_retention: int = setting(
        "CONVERTLY_WEBHOOK_LOG_RETENTION", 7 * 86_400, "Seconds a finished webhook delivery "
        "stays in the delivery log.", Duration(whole=True),
    )

    # --- rate limits and quotas (convertly.limits) ---------------------------------------
    rate_limit: float = setting(
        "CONVERTLY_RATE_LIMIT", 25.0, "Requests a second each API key may make, on average "
        "(over it: 429 RATE_LIMITED with Retry-After). 0 turns per-key rate limits off.",
        _non_negative_float,
    )
    rate_burst: int = setting(
        "CONVERTLY_RATE_BURST", 100, "Requests an API key may make at once before "
        "CONVERTLY_RATE_LIMIT applies (the bucket refills at that rate).", _positive_int,
    )
    auth_failure_limit: int = setting(
        "CONVERTLY_AUTH_FAILURE_LIMIT", 20, "Requests with a wrong or revoked API key one "
        "client address may make per CONVERTLY_AUTH_FAILURE_WINDOW; past it, every request "
        "from that address gets 429 AUTH_THROTTLED until the window refills. 0 turns it "
        "off.", _non_negative_int,
    )
    auth_failure_window: float = setting(
        "CONVERTLY_AUTH_FAILURE_WINDOW", 60.0, "Seconds over which "
        "CONVERTLY_AUTH_FAILURE_LIMIT failed authentications are allowed.", Duration(),
    )
    playback_event_rate: float = setting(
        "CONVERTLY_PLAYBACK_EVENT_RATE", 10.0, "Playback events (POST "
        "/api/video/playback-events, which takes no API key) one client address may send a "
        "second, on average; over it: 429 RATE_LIMITED. 0 turns it off.",
        _non_negative_float,
    )
    playback_event_burst: int = setting(
        "CONVERTLY_PLAYBACK_EVENT_BURST", 100, "Playback events one client address may send "
        "at once before CONVERTLY_PLAYBACK_EVENT_RATE applies.", _positive_int,
    )
    tenant_max_jobs: int = setting(
        "CONVERTLY_TENANT_MAX_JOBS", 50, "Unfinished (pending or processing) jobs one "
        "tenant may have; a new job over it gets 429 CONCURRENT_JOBS_LIMIT. 0: no limit.",
        _non_negative_int,
    )
    tenant_max_queued_files: int = setting(
        "CONVERTLY_TENANT_MAX_QUEUED_FILES", 2000, "Files of one tenant's unfinished jobs "
        "not yet converted; a new job that would pass it gets 429 QUEUED_FILES_LIMIT. 0: no "
        "limit.", _non_negative_int,
    )
    tenant_max_stored_bytes: int = setting(
        "CONVERTLY_TENANT_MAX_STORED_BYTES", 50 * 1024**3, "Bytes one tenant may keep in "
        "storage (what /api/files lists, job outputs included); uploads, saved conversions "
        "and new jobs over it get 403 STORAGE_LIMIT. 0: no limit.", ByteSize(0),
    )

    # Outside work on pools of its own, shared fairly: sourceUrl downloads and webhook
    # deliveries never run on the threads the other routes use, and one tenant's slow
    # origins or receivers hold only its share of them.
    fetch_concurrency: int = setting(
        "CONVERTLY_FETCH_CONCURRENCY", 16, "`sourceUrl` downloads each API process runs at "
        "once, on threads of their own (never those of the other routes).", _positive_int,
    )
    fetch_tenant_concurrency: int = setting(
        "CONVERTLY_FETCH_TENANT_CONCURRENCY", 4, "`sourceUrl` downloads one tenant runs at "
        "once in an API process; its others wait, behind the waiting downloads of tenants "
        "that run fewer.", _positive_int,
    )
    fetch_tenant_queue: int = setting(
        "CONVERTLY_FETCH_TENANT_QUEUE", 16, "`sourceUrl` downloads of one tenant that may wait "
        "for a thread in an API process; one more is answered 503 QUEUE_FULL with "
        "Retry-After.", _non_negative_int,
    )
    webhook_tenant_concurrency: int = setting(
        "CONVERTLY_WEBHOOK_TENANT_CONCURRENCY", 4, "Webhook deliveries of one tenant each API "
        "process sends at once (of CONVERTLY_WEBHOOK_CONCURRENCY): one tenant's slow "
        "receivers never hold every sender.", _positive_int,
    )
    webhook_endpoint_concurrency: int = setting(
        "CONVERTLY_WEBHOOK_ENDPOINT_CONCURRENCY", 2, "Webhook deliveries to one endpoint each "
        "API process sends at once.", _positive_int,
    )

    @property
    def distributed(self) -> bool:
        return bool(self.broker_url)

    @property
    def metrics_path(self) -> Path:
        return Path(self.metrics_dir) if self.metrics_dir else self.data_dir / "metrics"

    @property
    def redis_state_url(self) -> str:
        return self.state_url or self.broker_url

    @classmethod
    def fields(cls) -> list[dataclasses.Field[Any]]:
        return list(dataclasses.fields(cls))

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
    ) -> Settings:
        """Settings from `environ` (default os.environ), falling back to `env_file`.

        An empty value means the default. A `CONVERTLY_*` name that is no setting is logged
        as a warning with the closest setting's name. Raises SettingsError (one line)."""
        from_file: dict[str, str] = {}
        if env_file is not None and env_file.is_file():
            from_file = read_env_file(env_file)
        environ = os.environ if environ is None else environ
        values = {**from_file, **environ}
        for message in unknown_names(environ, from_file, env_file):
            log.warning("%s", message)
        # The standard proxy variables stand in for the outbound proxy settings.
        for name, standard in (("CONVERTLY_OUTBOUND_PROXY", _PROXY_VARIABLES),
                               ("CONVERTLY_OUTBOUND_NO_PROXY", ("NO_PROXY", "no_proxy"))):
            if not values.get(name):
                values[name] = next((values[v] for v in standard if values.get(v)), "")
        kwargs: dict[str, Any] = {}
        for f in cls.fields():
            name = f.metadata["env"]
            raw = values.get(name, "")
            if raw.strip() == "":
                continue
            try:
                kwargs[f.name] = f.metadata["parse"](raw)
            except ValueError as exc:
                value = shown(raw, secret=f.metadata["parse"] is _secret)
                reason = " ".join(str(exc).split())
                raise SettingsError(f"{name}: {reason}, got {value}") from None
        settings = cls(**kwargs)
        settings.validate()
        return settings

    def __post_init__(self) -> None:
        # External programs (ffmpeg, Ghostscript, rar) run inside their working directory,
        # so every path derived from the data directory must be absolute: a relative one
        # (the default, `data`) is taken from the directory the process started in.
        object.__setattr__(self, "data_dir", Path(os.path.abspath(self.data_dir)))

    def validate(self) -> None:
        """The checks between settings (each one alone is checked by its parser)."""
        if self.state_url and not self.broker_url:
            raise SettingsError("CONVERTLY_STATE_URL: needs CONVERTLY_BROKER_URL as well.")
        if self.task_time_limit <= self.task_soft_time_limit:
            raise SettingsError("CONVERTLY_TASK_TIME_LIMIT: must be larger than "
                                "CONVERTLY_TASK_SOFT_TIME_LIMIT.")
        if bool(self.s3_access_key) != bool(self.s3_secret_key):
            raise SettingsError("CONVERTLY_S3_ACCESS_KEY and CONVERTLY_S3_SECRET_KEY go "
                                "together: set both, or neither (credentials then come "
                                "from the environment, a web identity or an instance role).")
        if self.outbound_proxy:
            from convertly.proxy import Proxy

            try:
                Proxy.parse(self.outbound_proxy)
            except ValueError as exc:
                raise SettingsError(f"CONVERTLY_OUTBOUND_PROXY (or HTTPS_PROXY/HTTP_PROXY): "
                                    f"{exc}") from None
        if self.log_format not in {"auto", "text", "json"}:
            raise SettingsError(f"CONVERTLY_LOG_FORMAT: expected auto, text or json, got "
                                f"{self.log_format!r}")
        otlp = urlsplit(self.otlp_endpoint)
        if self.otlp_endpoint and (otlp.scheme not in ("http", "https") or not otlp.netloc):
            raise SettingsError("CONVERTLY_OTLP_ENDPOINT: expected an http(s):// URL such as "
                                f"http://collector:4318/v1/traces, got {self.otlp_endpoint!r}")
        if self.worker_metrics_port > 65535:
            raise SettingsError("CONVERTLY_WORKER_METRICS_PORT: must be a port from 1 to "
                                f"65535 (0: off), got {self.worker_metrics_port}")
        if self.webhook_retry_max_delay < self.webhook_retry_delay:
            raise SettingsError("CONVERTLY_WEBHOOK_RETRY_MAX_DELAY: must be at least "
                                "CONVERTLY_WEBHOOK_RETRY_DELAY.")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def to_env(self) -> dict[str, str]:
        """The settings as environment variables (to hand to a child process)."""
        out: dict[str, str] = {}
        for f in self.fields():
            value = getattr(self, f.name)
            out[f.metadata["env"]] = str(value)
        return out


_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")


def _is_host_port(endpoint: str) -> bool:
    """`host`, `host:port` or `[v6]:port`: what the S3 client accepts as an endpoint (it adds
    the scheme itself), with a port from 1 to 65535 when one is given."""
    if "://" in endpoint or any(c.isspace() for c in endpoint):
        return False
    parts = urlsplit(f"//{endpoint}")
    try:
        port = parts.port
    except ValueError:
        return False
    return (bool(parts.hostname) and parts.path in ("", "/") and not parts.query
            and not parts.fragment and "@" not in parts.netloc
            and (port is None or port > 0) and not parts.netloc.endswith(":"))


_PREFIX = "CONVERTLY_"


def unknown_names(environ: Mapping[str, str], from_file: Mapping[str, str],
                  env_file: Path | None) -> list[str]:
    """A warning for each `CONVERTLY_*` name that is no setting (a misspelled one would
    otherwise do nothing), with the closest setting's name."""
    known = [f.metadata["env"] for f in Settings.fields()]
    messages = []
    for source, names in (("the environment", environ), (str(env_file), from_file)):
        for name in sorted(n for n in names if n.startswith(_PREFIX) and n not in known):
            if source != "the environment" and name in environ:
                continue  # said once
            # Compared without the prefix every name shares, which would make all look close.
            close = difflib.get_close_matches(name.removeprefix(_PREFIX),
                                              [k.removeprefix(_PREFIX) for k in known], n=1)
            hint = (f"did you mean {_PREFIX}{close[0]}?" if close else
                    "see .env.example for the settings")
            messages.append(f"{name} (in {source}) is not a setting and does nothing; {hint}")
    return messages


def read_env_file(path: Path) -> dict[str, str]:
    """A `.env` file read by python-dotenv's rules, those of Docker Compose's env_file too:
    `# comments` (also after a value, past a space), single or double quotes, an `export `
    prefix, escapes in double quotes, `${VAR}` expansion. A name with no `=` is ignored."""
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}
