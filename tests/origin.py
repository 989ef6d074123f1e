"""An HTTP server on loopback for the tests' origins (what a `sourceUrl` points at)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def loopback_origin(handler: Callable[..., BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` answering on a free loopback port, in threads: its base URL
    (http://127.0.0.1:PORT); shut down and closed on leaving."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
