"""A webhook receiver for tests: a threaded http.server on a free loopback port that records
every request and answers with statuses scripted per path (200 when nothing is scripted)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._scripts: dict[str, deque[int]] = defaultdict(deque)
        self._defaults: dict[str, int] = {}
        self._delays: dict[str, float] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def answer(self, path: str, *statuses: int, then: int | None = None,
               delay: float | None = None) -> None:
        """Answer `path` with `statuses` one after the other, then always `then`
        (default: what was set before, else 200), each after `delay` seconds."""
        with self._lock:
            self._scripts[path].extend(statuses)
            if then is not None:
                self._defaults[path] = then
            if delay is not None:
                self._delays[path] = delay

    def _status(self, path: str) -> tuple[int, float]:
        with self._lock:
            script = self._scripts[path]
            status = script.popleft() if script else self._defaults.get(path, 200)
            return status, self._delays.get(path, 0.0)

    def _record(self, received: Received) -> None:
        with self._changed:
            self.requests.append(received)
            self._changed.notify_all()

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, predicate: Callable[[list[Received]], bool],
                 timeout: float = 30.0) -> list[Received]:
        """The requests to `path` once `predicate` holds for them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [r for r in self.requests if r.path == path]
                if predicate(found):
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"receiver: {path} got {len(found)} requests "
                                         f"{[r.body[:120] for r in found]}")
                self._changed.wait(min(left, 0.2))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver._record(Received(
                    method="POST", path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()}, body=body,
                    at=time.time()))
                status, delay = receiver._status(self.path)
                if delay:
                    time.sleep(delay)
                payload = (b"accepted" if status < 300 else
                           b"receiver says no: " + b"x" * 2000)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/redirected")
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def kinds(requests: Iterable[Received]) -> list[str]:
    import json

    return [json.loads(r.body)["type"] for r in requests]
