"""Client connection hygiene for `convertly serve`: how long a client may take to send a
request, how long an idle connection stays open, and how many connections one address holds.

uvicorn bounds only the idle time between requests (`timeout_keep_alive`, and only until
the first byte of the next request arrives) and the number of connections of the whole
server (`limit_concurrency`). `GuardedProtocol` is uvicorn's httptools protocol (the one
`convertly serve` runs; httptools is a dependency) with, per connection:

- a header deadline: a request's headers must be complete within `header_timeout` seconds
  of the connection's opening or of the end of the previous response, however they trickle
  in; then the connection is closed;
- a body idle timeout: a request body that stops arriving for `body_timeout` seconds closes
  the connection (the app sees a client disconnect). Only the client's silence counts: not
  the time reading is paused because the app has not taken what arrived, nor the wait for
  the app's `100 Continue`. A slow upload that keeps sending is never cut;
- a cap on the size of a request's headers (MAX_HEADER_BYTES; httptools has none, and a
  client could otherwise send header lines as fast as it likes until the deadline): over
  it, `431 HEADERS_TOO_LARGE`;
- a cap on the connections open at once from one client address: the next one is answered
  `429 TOO_MANY_CONNECTIONS` with `Retry-After` and closed.

Both answers are written here, before anything reaches the app, in the service's error
shape (so they have no class in convertly.errors: the app never sees them).

Behind a reverse proxy every connection comes from the proxy's address, and a forwarded-for
header is per request, not per connection, so it cannot choose whose connection to refuse:
turn the cap off there (0) and let the proxy cap connections per client. The timeouts still
apply to the proxy's connections.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from convertly.settings import Settings

log = logging.getLogger(__name__)

REFUSED_LINGER = 2.0  # seconds a refused connection is read (and dropped) before closing
MAX_HEADER_BYTES = 64 * 1024  # request line and headers of one request


@dataclass(frozen=True)
class ConnectionLimits:
    """The limits of `GuardedProtocol`; 0 for `max_per_address` means no cap."""

    header_timeout: float
    body_timeout: float
    keepalive_timeout: float
    max_per_address: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            keepalive_timeout=settings.keepalive_timeout,
            max_per_address=settings.max_connections_per_address,
        )


def uvicorn_options(limits: ConnectionLimits) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config` that apply `limits`."""
    return {"http": protocol_class(limits), "timeout_keep_alive": limits.keepalive_timeout}


def protocol_class(limits: ConnectionLimits) -> type[GuardedProtocol]:
    """A GuardedProtocol class of its own for one server: its connection counts are shared
    by that server's connections only."""
    return type("ServerProtocol", (GuardedProtocol,),
                {"limits": limits, "open_by_address": Counter()})  # fmt: skip


def error_response(status: int, code: str, message: str, *, retry_after: int = 0) -> bytes:
    """A whole response in the service's error shape, closing the connection."""
    body = json.dumps({"error": message, "code": code}).encode()
    phrase = HTTPStatus(status).phrase
    retry = f"retry-after: {retry_after}\r\n" if retry_after else ""
    head = (f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n{retry}connection: close\r\n\r\n")  # fmt: skip
    return head.encode() + body


def refusal(max_per_address: int) -> bytes:
    """The answer of a connection over the per-address cap."""
    return error_response(
        429, "TOO_MANY_CONNECTIONS", f"Too many connections from your address (at most "
        f"{max_per_address} at once); close some, or reuse them, and retry.", retry_after=1,
    )


HEADERS_TOO_LARGE = error_response(
    431, "HEADERS_TOO_LARGE", f"The request's line and headers are over {MAX_HEADER_BYTES:,} "
    "bytes; send fewer or shorter headers.",
)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the deadlines and the cap of the module docstring.

    One timer per connection, for what the connection waits for: the headers of the next
    request (a fixed deadline), the rest of a body (an idle timeout), or nothing while the
    app works on a request and answers it.
    """

    limits: ClassVar[ConnectionLimits]
    open_by_address: ClassVar[Counter[str]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._counted: str | None = None  # the address counted against the cap
        self._refused = False
        self._waiting = "headers"  # "headers", "body" or "app"
        self._since = 0.0  # when the wait began, or the body's last byte arrived
        self._header_bytes = 0  # of the request whose headers are awaited
        self._timer: asyncio.TimerHandle | None = None

    # -- connections -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = self.client[0] if self.client else None
        cap = self.limits.max_per_address
        if cap and address is not None:
            if self.open_by_address[address] >= cap:
                self._refuse(address)
                return
            self.open_by_address[address] += 1
            self._counted = address
        self._wait("headers")

    def _refuse(self, address: str) -> None:
        """Answer 429 and close, reading what the client sends meanwhile: closing a socket
        with unread data resets it, and the client would lose the answer."""
        log.debug("refused a connection from %s: %d open already", address,
                  self.limits.max_per_address)
        self._answer_and_close(refusal(self.limits.max_per_address))

    def _answer_and_close(self, response: bytes) -> None:
        self._cancel()
        self._refused = True
        self.transport.write(response)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._timer = self.loop.call_later(REFUSED_LINGER, self.transport.close)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._waiting == "headers":
            # Earlier chunks left the headers incomplete: they were headers all through.
            if self._header_bytes > MAX_HEADER_BYTES:
                log.info("closed a connection from %s: request headers over %d bytes",
                         self.client[0] if self.client else "?", MAX_HEADER_BYTES)
                self._answer_and_close(HEADERS_TOO_LARGE)
                return
            self._header_bytes += len(data)
        super().data_received(data)

    def eof_received(self) -> bool | None:  # type: ignore[override]
        if self._refused:
            self.transport.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        if self._counted is not None:
            self.open_by_address[self._counted] -= 1
            if self.open_by_address[self._counted] <= 0:
                del self.open_by_address[self._counted]
            self._counted = None
        super().connection_lost(exc)

    # -- what the connection waits for -------------------------------------------------

    def on_headers_complete(self) -> None:
        self._wait("body")
        super().on_headers_complete()

    def handle_websocket_upgrade(self) -> None:
        # The connection is the WebSocket protocol's from here on.
        self._wait("app")
        super().handle_websocket_upgrade()

    def on_body(self, body: bytes) -> None:
        self._since = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        # A response sent before the body was read (an early error) leaves the connection
        # waiting for the next request now.
        early = self.cycle is not None and self.cycle.response_complete
        self._wait("headers" if early else "app")
        super().on_message_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # a next request already read: the app has it
        super().on_response_complete()
        if self._waiting == "app" and not pipelined and not self.transport.is_closing():
            self._wait("headers")

    def _wait(self, what: str) -> None:
        self._cancel()
        self._waiting = what
        self._since = self.loop.time()
        self._header_bytes = 0
        timeout = {"headers": self.limits.header_timeout, "body": self.limits.body_timeout}
        if what in timeout:
            self._timer = self.loop.call_later(timeout[what], self._expire)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self._waiting == "body":
            if self.flow.read_paused or (self.cycle is not None
                                         and self.cycle.waiting_for_100_continue):
                self._since = now  # waiting for the app, not for the client
            left = self._since + self.limits.body_timeout - now
            if left > 0:
                self._timer = self.loop.call_later(left, self._expire)
                return
            log.info("closed a connection from %s: no body bytes for %g s",
                     self.client[0] if self.client else "?", self.limits.body_timeout)
        elif self._waiting == "headers":
            log.debug("closed a connection from %s: no complete request headers within %g s",
                      self.client[0] if self.client else "?", self.limits.header_timeout)
        else:
            return
        self.transport.close()


class SettingsProtocol(GuardedProtocol):
    """GuardedProtocol with the limits of the settings in the environment, for servers that
    import the protocol by name in each of their processes (`convertly serve --workers N`:
    `http="convertly.connections:SettingsProtocol"`). Each process counts its own
    connections, so one address may hold up to N x CONVERTLY_MAX_CONNECTIONS_PER_ADDRESS in
    all, as the kernel spreads its connections over the processes."""

    open_by_address: ClassVar[Counter[str]] = Counter()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        if "limits" not in cls.__dict__:
            cls.limits = ConnectionLimits.from_settings(Settings.from_env())
        super().__init__(*args, **kwargs)
