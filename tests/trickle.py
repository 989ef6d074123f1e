"""A hostile HTTP peer for tests: a TCP server on a free loopback port that reads each request
and then answers with `payload` one byte every `interval` seconds (an origin or a webhook
receiver that trickles its headers), one thread per connection."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Self

# A status line and headers that never end: a new header byte every interval.
ENDLESS_HEADERS = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100_000
# A complete answer whose body comes slowly.
BODY_TRICKLE = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100_000


class Trickler:
    def __init__(self, payload: bytes = ENDLESS_HEADERS, interval: float = 1.0,
                 step: int = 1) -> None:
        self.payload = payload
        self.interval = interval
        self.step = step  # bytes sent at a time
        self.accepted = 0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self._server.settimeout(0.1)  # to notice the end: close() does not wake accept()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.getsockname()[1])

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._open)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._closing.set()
        self._server.close()
        with self._lock:
            for conn in self._open:
                conn.close()
        self._thread.join(5)

    def wait_closed(self, timeout: float) -> float:
        """Seconds until every connection made so far was closed by its client."""
        started = time.monotonic()
        while self.open_connections and time.monotonic() - started < timeout:
            time.sleep(0.02)
        return time.monotonic() - started

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._open.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            conn.recv(65536)  # the request (small: it comes in one piece on loopback)
            conn.settimeout(0.001)
            for i in range(0, len(self.payload), self.step):
                conn.sendall(self.payload[i:i + self.step])
                # Wait for the next byte, or for the client to hang up.
                if self._closing.wait(self.interval) or _hung_up(conn):
                    return
        except OSError:
            return
        finally:
            with self._lock:
                self._open.discard(conn)
            conn.close()


def _hung_up(conn: socket.socket) -> bool:
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except (BlockingIOError, TimeoutError):
        return False
    except OSError:
        return True
