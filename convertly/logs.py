"""Log lines: one format for the app's loggers and uvicorn's, readable text or JSON lines
(CONVERTLY_LOG_FORMAT), and the context of the request or task a line was written for.

`bind(request_id=..., tenant=..., job_id=...)` sets the context for the running request or
task (contextvars: each request's task and the threads it hands work to carry their own);
every line then carries those ids: as ` [request_id=... tenant=...]` in text, as fields in
JSON. The API's middleware (`convertly.api.observe`) binds the request id; the key check
adds the tenant; pool and Celery tasks bind what their message carries.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

CONTEXT_FIELDS = ("request_id", "tenant", "job_id")
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "convertly_log_context", default=None)


def valid_request_id(value: str | None) -> str | None:
    """`value` when it is a request id we pass on (1 to 128 characters: letters, digits and
    `._:@/+=-`), else None."""
    if value is not None and _REQUEST_ID.fullmatch(value):
        return value
    return None


def new_request_id() -> str:
    return secrets.token_hex(16)


def context() -> dict[str, str]:
    """The ids bound to the running request or task (a copy)."""
    return dict(_context.get() or {})


def bind(**ids: str | None) -> None:
    """Add ids to the running request's or task's context (None values are skipped). The
    context is one dict per request, so ids bound deeper down (the tenant, once the key is
    checked) are seen by the middleware's access line as well."""
    current = _context.get()
    if current is None:
        current = {}
        _context.set(current)
    current.update({name: value for name, value in ids.items() if value})


def start(**ids: str | None) -> None:
    """Begin a fresh context for a request or task with `ids` bound (not reset: the task
    or request that follows starts its own)."""
    _context.set({name: value for name, value in ids.items() if value})


@contextmanager
def scope(**ids: str | None) -> Iterator[dict[str, str]]:
    """A fresh context for one request or task, with `ids` bound; restored afterwards."""
    fresh = {name: value for name, value in ids.items() if value}
    token = _context.set(fresh)
    try:
        yield fresh
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the bound ids onto each record (as attributes named after CONTEXT_FIELDS)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = _context.get() or {}
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, ids.get(name))
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS
                       if getattr(record, name, None))
        if not ids:
            return line
        first, newline, rest = line.partition("\n")  # a traceback stays below the ids
        return f"{first} [{ids}]{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the bound ids,
    the fields an access line adds (`extra=`), and the traceback when there is one."""

    EXTRA = ("method", "route", "path", "status", "duration_ms")

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in (*CONTEXT_FIELDS, *self.EXTRA):
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def use_json(log_format: str, stream: Any = None) -> bool:
    """Whether CONVERTLY_LOG_FORMAT asks for JSON lines: `json` always, `text` never, `auto`
    when the stream (stderr) is not a terminal."""
    if log_format == "auto":
        stream = sys.stderr if stream is None else stream
        return not (hasattr(stream, "isatty") and stream.isatty())
    return log_format == "json"


def configure(level: str, log_format: str, stream: Any = None) -> None:
    """Send every log line (the app's, uvicorn's, Celery's through the root logger) to
    `stream` (stderr) in one format at `level`."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if use_json(log_format, stream) else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("pyvips").setLevel(logging.WARNING)  # per-operation chatter at INFO
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True


def access_fields(method: str, route: str, path: str, status: int, duration_ms: float
                  ) -> Mapping[str, Any]:
    """The `extra=` of an access line (fields of their own in JSON), with the request's
    ids given explicitly (any handler sees them, not only ours)."""
    ids = _context.get() or {}
    return {"method": method, "route": route, "path": path, "status": status,
            "duration_ms": round(duration_ms, 1),
            **{name: ids.get(name) for name in CONTEXT_FIELDS}}
