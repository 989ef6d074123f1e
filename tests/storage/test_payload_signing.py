"""CONVERTLY_S3_SIGN_PAYLOAD: over plain HTTP, upload bodies are signed (their SHA-256 in
the signature) unless the setting turns it off; either way a real S3 server takes them."""

from __future__ import annotations

import contextlib
import hashlib
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from convertly.errors import StorageUnavailableError
from convertly.storage.s3 import S3Storage
from tests.infra import SeaweedS3
from tests.storage.conftest import BUCKET, BigFile, empty_bucket


class RecordingProxy:
    """A loopback TCP proxy to `upstream` that keeps every byte clients send through it."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.sent = bytearray()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                server = socket.create_connection(self.upstream)
                threading.Thread(target=self._pump, args=(client, server, True),
                                 daemon=True).start()
                threading.Thread(target=self._pump, args=(server, client, False),
                                 daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        with contextlib.suppress(OSError), src, dst:
            while data := src.recv(65536):
                if record:
                    with self._lock:
                        self.sent += data
                dst.sendall(data)

    def content_sha256_of_puts(self, path: str) -> list[bytes]:
        """The x-amz-content-sha256 header of every PUT to a path under `path`."""
        with self._lock:
            sent = bytes(self.sent)
        heads = re.findall(rb"PUT " + re.escape(path.encode()) +
                           rb"[^\r\n]* HTTP/1\.1\r\n(.*?)\r\n\r\n", sent, flags=re.S)
        return [m.group(1) for head in heads
                if (m := re.search(rb"(?im)^x-amz-content-sha256:\s*(\S+)", head))]

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def proxy(seaweed: SeaweedS3) -> Iterator[RecordingProxy]:
    empty_bucket(seaweed, BUCKET)
    recorder = RecordingProxy(seaweed.endpoint)
    yield recorder
    recorder.close()
    empty_bucket(seaweed, BUCKET)


def _storage(seaweed: SeaweedS3, proxy: RecordingProxy, sign: bool) -> S3Storage:
    return S3Storage(proxy.endpoint, seaweed.access_key, seaweed.secret_key, BUCKET,
                     sign_payload=sign)


def test_bodies_are_signed_by_default(seaweed: SeaweedS3, proxy: RecordingProxy) -> None:
    storage = _storage(seaweed, proxy, sign=True)
    storage.put_bytes("signed/a.bin", b"signed body")
    assert proxy.content_sha256_of_puts(f"/{BUCKET}/signed/") == [
        hashlib.sha256(b"signed body").hexdigest().encode()]
    with storage.open("signed/a.bin") as fh:
        assert fh.read() == b"signed body"


def test_unsigned_bodies_are_taken_by_the_server_whole(
        seaweed: SeaweedS3, proxy: RecordingProxy, big_file: BigFile, tmp_path: Path) -> None:
    storage = _storage(seaweed, proxy, sign=False)
    storage.put_bytes("unsigned/a.bin", b"unsigned body")
    storage.put_file("unsigned/big.bin", big_file.path)  # a multipart upload: several PUTs
    puts = proxy.content_sha256_of_puts(f"/{BUCKET}/unsigned/")
    assert len(puts) >= 3 and set(puts) == {b"UNSIGNED-PAYLOAD"}
    with storage.open("unsigned/a.bin") as fh:
        assert fh.read() == b"unsigned body"
    storage.get_file("unsigned/big.bin", tmp_path / "big")
    with (tmp_path / "big").open("rb") as fh:
        assert hashlib.file_digest(fh, "sha256").hexdigest() == big_file.sha256
    # The request is still signed: a wrong secret is refused.
    intruder = S3Storage(proxy.endpoint, seaweed.access_key, "not-the-secret", BUCKET,
                         sign_payload=False)
    with pytest.raises(StorageUnavailableError):
        intruder.put_bytes("unsigned/intruder.bin", b"x")
    assert not storage.exists("unsigned/intruder.bin")
    assert storage.delete_prefix("unsigned") == 2
