"""What every endpoint reads from a request besides its body: the services and executor the
app was started with, the caller's API key, the public base URL, and query parameters, each
checked the same way (the same bad value gets the same message on every route)."""

from __future__ import annotations

import math
import re

from starlette.requests import Request

from convertly import limits, logs, views
from convertly.errors import AuthenticationError, InvalidFieldError
from convertly.executors.base import Executor
from convertly.service import Services
from convertly.state.records import ApiKey

WAIT_MAX = 60.0  # seconds GET /api/jobs/{id}?wait= may hold a request
_INTEGER = re.compile(r"-?[0-9]{1,12}")  # ASCII digits only: "²".isdigit() is True
_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def executor(request: Request) -> Executor:
    running: Executor = request.app.state.executor
    return running


def authenticate(request: Request) -> ApiKey:
    """The caller's key, from `Authorization: Bearer ...` or `x-api-key` (401 otherwise),
    within its limits (`convertly.limits`): an address that sent too many wrong keys gets
    429 whatever key it sends, a key over its rate 429. The rate decision goes to
    `request.state.rate_limit` (the RateLimit-* headers of the answer)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    key = token.strip() if scheme.lower() == "bearer" else None
    key = key or request.headers.get("x-api-key")
    svc = services(request)
    address = request.client.host if request.client else ""
    try:
        record = svc.keys.authenticate(key)
    except AuthenticationError:
        if key:  # a request with no key at all guesses nothing
            limits.note_auth_failure(svc, address)
        raise
    logs.bind(tenant=record.tenant)
    request.state.rate_limit = limits.check_request(svc, record, address)
    return record


def base_url(request: Request) -> str:
    """CONVERTLY_PUBLIC_URL, else the URL the request came in on, without a trailing slash."""
    configured = services(request).settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


def download_url(request: Request, *, key: str, tenant: str, filename: str,
                 mime_type: str) -> str:
    return views.signed_url(services(request), base_url(request), key=key, tenant=tenant,
                            filename=filename, mime_type=mime_type)


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]; `default` when absent or empty."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not _INTEGER.fullmatch(raw) or not low <= int(raw) <= high:
        raise InvalidFieldError(name, f"must be a whole number from {low} to {high}, "
                                f"got {raw[:40]!r}.")
    return int(raw)


def query_wait(request: Request) -> float:
    """`?wait=SECONDS`: 0 (answer at once) when absent."""
    raw = request.query_params.get("wait")
    if raw is None or raw == "":
        return 0.0
    # ASCII decimals only: float() also takes "nan", "inf", "1_0" and non-ASCII digits.
    value = float(raw) if _DECIMAL.fullmatch(raw) else math.nan
    if not 0 <= value <= WAIT_MAX:
        raise InvalidFieldError("wait", f"must be a number of seconds from 0 to {WAIT_MAX:g} "
                                "(0: answer at once).")
    return value
