"""An S3 endpoint that accepts connections and then says nothing (a hung server, a stuck
proxy): each call gives up after one read timeout instead of asking again, and `check`
(start-up, /healthz) after its own short timeout."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from convertly.errors import StorageUnavailableError
from convertly.storage.s3 import PROBE_TIMEOUT, S3Storage, build_http_client


class _SilentServer:
    """Accepts every connection, reads what is sent, never answers; counts connections."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed
                return
            self.connections.append(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def silent() -> Iterator[_SilentServer]:
    server = _SilentServer()
    try:
        yield server
    finally:
        server.close()


def _storage(endpoint: str, read_timeout: float) -> S3Storage:
    return S3Storage(endpoint, "key", "secret-key", "bucket", probe=False,
                     http_client=build_http_client(read_timeout=read_timeout))


def test_a_data_call_asks_a_silent_server_once(silent: _SilentServer) -> None:
    storage = _storage(silent.endpoint, read_timeout=0.5)
    with pytest.raises(StorageUnavailableError) as raised:
        storage.put_bytes("a/b", b"data")
    assert raised.value.transient
    # One connection, one request: no second wait of a whole read timeout.
    assert len(silent.connections) == 1


def test_check_waits_seconds_not_the_read_timeout(silent: _SilentServer) -> None:
    storage = _storage(silent.endpoint, read_timeout=600)
    started = time.monotonic()
    with pytest.raises(StorageUnavailableError):
        storage.check()
    assert time.monotonic() - started < PROBE_TIMEOUT * 3
    assert len(silent.connections) == 1
