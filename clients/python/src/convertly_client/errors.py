"""The client's errors, all `ClientError`:

    ClientError             anything that stops a request (a connection that broke off, a
    │                       server that did not answer in time, a wait that timed out);
    │                       `message` is one line
    ├── ConnectionFailed    the server could not be reached (refused, unknown host, timeout)
    └── ApiError            the server answered an error status: `status`, `code` (its machine
                            code, e.g. QUEUE_FULL), `message`, `detail`, `retry_after`
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
    """The server answered with an error status. `code` is its machine code when it sent
    Convertly's error body (`{"error", "code", "detail"}`), else None; `retry_after` the
    seconds its Retry-After header asked for (429, 503), else None."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 detail: Mapping[str, Any] | None = None,
                 retry_after: float | None = None) -> None:
        self.status = status
        self.code = code
        self.detail = dict(detail or {})
        self.retry_after = retry_after
        super().__init__(message)

    def __repr__(self) -> str:
        return f"ApiError(status={self.status}, code={self.code!r}, message={self.message!r})"
