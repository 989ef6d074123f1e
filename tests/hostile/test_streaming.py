"""Size limits are enforced while the body streams in, over a real socket: the server answers
413 naming the setting long before a client has sent an oversized body, whether the body
announces its length or is chunked."""

from __future__ import annotations

import json
from collections.abc import Iterator

from tests.hostile.conftest import MIB
from tests.hostile.harness import HostileServer, post_raw

CHUNK = 64 * 1024
BOUNDARY = "b0undary"


def _head(server: HostileServer, extra: str) -> bytes:
    host = server.base.removeprefix("http://")
    return (f"POST /api/convert HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {server.key}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{extra}\r\n").encode()


def _file_part(size: int) -> Iterator[bytes]:
    yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"format\"\r\n\r\npng\r\n"
           f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; "
           f"filename=\"big.png\"\r\nContent-Type: image/png\r\n\r\n").encode()
    sent = 0
    while sent < size:
        yield b"\0" * CHUNK
        sent += CHUNK


def _chunked(parts: Iterator[bytes]) -> Iterator[bytes]:
    for part in parts:
        yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
    yield b"0\r\n\r\n"


def _error(body: bytes) -> dict[str, str]:
    # A chunked answer: the JSON sits between the chunk sizes.
    text = body.decode(errors="replace")
    start, end = text.find("{"), text.rfind("}")
    parsed: dict[str, str] = json.loads(text[start : end + 1])
    return parsed


def test_announced_length_over_the_request_limit_is_refused_before_the_body(
        small_server: HostileServer) -> None:
    total = 64 * MIB
    status, body, sent = post_raw(small_server, _head(small_server, f"Content-Length: {total}\r\n"),
                                  _file_part(total))
    assert status == 413, body[:300]
    error = _error(body)
    assert error["code"] == "PAYLOAD_TOO_LARGE"
    assert "CONVERTLY_MAX_REQUEST_BYTES" in error["error"]
    assert sent < 8 * MIB


def test_chunked_file_over_the_file_limit_is_cut_off_while_streaming(
        small_server: HostileServer) -> None:
    total = 64 * MIB
    status, body, sent = post_raw(small_server, _head(small_server,
                                                      "Transfer-Encoding: chunked\r\n"),
                                  _chunked(_file_part(total)))
    assert status == 413, body[:300]
    error = _error(body)
    assert error["code"] == "FILE_TOO_LARGE"
    assert "CONVERTLY_MAX_FILE_BYTES" in error["error"]
    assert sent < 16 * MIB  # of 64: the limit is 1 MiB, loopback socket buffers hold MBs


def test_server_still_answers_after_cut_off_uploads(small_server: HostileServer) -> None:
    import httpx

    assert httpx.get(f"{small_server.base}/healthz", timeout=10).status_code == 200
