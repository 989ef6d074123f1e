"""Client connection hygiene of `convertly serve` (convertly/connections.py), with real
sockets against a real server process: trickled headers and stalled bodies are cut, one
address cannot hold more than its share of connections, and normal traffic (keep-alive, a
slow but steady upload) is not disturbed."""

from __future__ import annotations

import json
import selectors
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx2
import pytest

from convertly.connections import MAX_HEADER_BYTES
from tests import images
from tests.api.test_cli import _convertly, _env, _free_port, _wait_for_key, _wait_until_serving
from tests.infra import terminate

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0
KEEPALIVE_TIMEOUT = 1.0
CAP = 4
# How late a cut may come: the event loop of a busy 2-core machine is not punctual.
SLACK = 3.0


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    key: str

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`convertly serve` with short client timeouts and a small per-address cap."""
    root = tmp_path_factory.mktemp("connections")
    port = _free_port()
    env = {**_env(root / "data"), "CONVERTLY_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
           "CONVERTLY_BODY_TIMEOUT": str(BODY_TIMEOUT),
           "CONVERTLY_KEEPALIVE_TIMEOUT": str(KEEPALIVE_TIMEOUT),
           "CONVERTLY_MAX_CONNECTIONS_PER_ADDRESS": str(CAP)}  # fmt: skip
    stdout_path, stderr_path = root / "stdout.log", root / "stderr.log"
    with stdout_path.open("w") as stdout, stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [_convertly(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=root, env=env, stdout=stdout, stderr=stderr,
        )
    try:
        key = _wait_for_key(process, stdout_path, stderr_path)
        _wait_until_serving(process, f"http://127.0.0.1:{port}", stderr_path)
        yield Server("127.0.0.1", port, key)
    finally:
        assert terminate(process), "convertly serve did not stop on SIGTERM"


def connect(server: Server, source: str = "127.0.0.1") -> socket.socket:
    """A connection from `source` (any 127.x.y.z is this machine's)."""
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect((server.host, server.port))
    return sock


def closed_after(sock: socket.socket, limit: float) -> float | None:
    """Seconds until the server closes `sock` (reading and dropping what it sends), or None
    if it is still open after `limit` seconds."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < limit:
        try:
            if not sock.recv(65536):
                return time.monotonic() - started
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - started
    return None


def answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one whole response (with a Content-Length) from `sock`."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "closed in the middle of a response"
        body += chunk
    return int(status_line.split()[1]), headers, body


def get(path: str, server: Server) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: {server.host}\r\n"
            f"Authorization: Bearer {server.key}\r\n\r\n").encode()  # fmt: skip


def healthy(server: Server) -> bool:
    return httpx2.get(f"{server.base}/healthz", timeout=5).status_code == 200


def test_trickled_headers_are_cut_at_the_header_timeout(server: Server) -> None:
    # 50 connections, from 25 addresses (under the cap), each sending a byte of its request
    # line every 0.3 s: uvicorn alone keeps them open as long as the bytes come.
    socks = {connect(server, f"127.0.1.{i // 2 + 1}"): time.monotonic() for i in range(50)}
    # A request line, then header lines that never end.
    request = b"GET /healthz HTTP/1.1\r\n" + b"X-Pad: 0\r\n" * 1000
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    cut: dict[socket.socket, float] = {}
    sent = 0
    deadline = time.monotonic() + HEADER_TIMEOUT + SLACK + 2
    while len(cut) < len(socks) and time.monotonic() < deadline:
        for sock in socks.keys() - cut.keys():
            try:
                sock.send(request[sent : sent + 1])
            except OSError:
                cut.setdefault(sock, time.monotonic() - socks[sock])
        sent += 1
        for event, _ in selector.select(timeout=0.3):
            sock = event.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            assert not data, f"the server answered a request it has not received: {data!r}"
            cut.setdefault(sock, time.monotonic() - socks[sock])
            selector.unregister(sock)
        assert healthy(server)  # everyone else is served meanwhile
    for sock in socks:
        sock.close()
    assert len(cut) == len(socks), f"{len(socks) - len(cut)} trickling connections still open"
    times = sorted(cut.values())
    print(f"\n50 trickling connections cut after {times[0]:.2f}-{times[-1]:.2f} s "
          f"(median {times[25]:.2f} s; header timeout {HEADER_TIMEOUT} s)")
    assert times[0] >= HEADER_TIMEOUT - 0.1 and times[-1] <= HEADER_TIMEOUT + SLACK


def test_headers_sent_fast_are_capped_in_size(server: Server) -> None:
    sock = connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    line = b"X-Pad: " + b"0" * 1000 + b"\r\n"
    sent = 0
    try:
        while sent < 4 * MAX_HEADER_BYTES:
            sock.sendall(line)
            sent += len(line)
    except OSError:
        pass
    status, headers, body = answer(sock)
    sock.close()
    assert (status, json.loads(body)["code"]) == (431, "HEADERS_TOO_LARGE")
    assert headers["connection"] == "close"
    # A request with headers just under the cap is served.
    sock = connect(server)
    pad = b"X-Pad: " + b"0" * (MAX_HEADER_BYTES - 2000) + b"\r\n"
    sock.sendall(get("/healthz", server).replace(b"\r\n\r\n", b"\r\n" + pad + b"\r\n"))
    assert answer(sock)[0] == 200
    sock.close()


def test_the_next_request_on_a_kept_alive_connection_has_the_same_deadline(
        server: Server) -> None:
    sock = connect(server)
    sock.sendall(get("/healthz", server))
    assert answer(sock)[0] == 200
    started = time.monotonic()
    sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # past keep-alive's reach: a byte came in
    for _ in range(20):
        time.sleep(0.2)
        try:
            sock.sendall(b"X-Slow: 1\r\n")
        except OSError:
            break
    waited = closed_after(sock, HEADER_TIMEOUT + SLACK)
    assert waited is not None, "a trickled second request kept the connection open"
    assert time.monotonic() - started <= HEADER_TIMEOUT + SLACK
    sock.close()


def test_idle_keep_alive_connections_close(server: Server) -> None:
    sock = connect(server)
    for _ in range(3):  # reused within the keep-alive timeout
        sock.sendall(get("/healthz", server))
        status, headers, _ = answer(sock)
        assert status == 200 and headers.get("connection") != "close"
    idle = closed_after(sock, KEEPALIVE_TIMEOUT + SLACK)
    sock.close()
    print(f"\nan idle keep-alive connection closed after {idle} s "
          f"(keep-alive timeout {KEEPALIVE_TIMEOUT} s)")
    assert idle is not None and idle >= KEEPALIVE_TIMEOUT - 0.1


def _upload_head(server: Server, body_length: int, boundary: str) -> bytes:
    return (f"POST /api/convert HTTP/1.1\r\nHost: {server.host}\r\n"
            f"Authorization: Bearer {server.key}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {body_length}\r\n\r\n").encode()  # fmt: skip


def _multipart(boundary: str, png: bytes) -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"format\"\r\n\r\njpg\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"slow.png\"\r\nContent-Type: image/png\r\n\r\n").encode() + png + (
            f"\r\n--{boundary}--\r\n").encode()  # fmt: skip


def test_a_stalled_upload_is_cut_and_a_slow_steady_one_is_not(server: Server) -> None:
    png = images.png(300, 300, noise=0.9)
    body = _multipart("b0undary", png)
    # Stalled: half the body, then nothing.
    stalled = connect(server)
    stalled.sendall(_upload_head(server, len(body), "b0undary") + body[: len(body) // 2])
    waited = closed_after(stalled, BODY_TIMEOUT + SLACK)
    stalled.close()
    assert waited is not None, "a stalled upload kept its connection"
    assert waited >= BODY_TIMEOUT - 0.1
    # Slow but steady: the body takes 3 x the body timeout (and more than the header
    # timeout), a chunk every quarter of a second.
    steady = connect(server)
    steady.sendall(_upload_head(server, len(body), "b0undary"))
    started = time.monotonic()
    chunk = len(body) // 24 + 1
    for at in range(0, len(body), chunk):
        time.sleep(BODY_TIMEOUT * 3 / 24)
        steady.sendall(body[at : at + chunk])
    took = time.monotonic() - started
    status, _, answered = answer(steady)
    steady.close()
    assert status == 200, answered[:300]
    assert json.loads(answered)["files"][0]["mimeType"] == "image/jpeg"
    print(f"\nstalled upload cut after {waited:.2f} s (body timeout {BODY_TIMEOUT} s); "
          f"a {len(body):,}-byte upload sent over {took:.1f} s converted")
    assert took > BODY_TIMEOUT * 2 and took > HEADER_TIMEOUT


def test_an_address_over_the_cap_is_refused_and_others_are_served(server: Server) -> None:
    held = [connect(server, "127.0.0.2") for _ in range(CAP)]
    try:
        over = connect(server, "127.0.0.2")
        over.sendall(get("/healthz", server))
        status, headers, body = answer(over)
        over.close()
        assert status == 429
        assert headers["retry-after"] == "1" and headers["connection"] == "close"
        error = json.loads(body)
        assert error["code"] == "TOO_MANY_CONNECTIONS" and str(CAP) in error["error"]
        # Another address is served; so is the capped one once it closes a connection.
        other = connect(server, "127.0.0.3")
        other.sendall(get("/healthz", server))
        assert answer(other)[0] == 200
        other.close()
        held.pop().close()
        deadline = time.monotonic() + 5
        while True:
            again = connect(server, "127.0.0.2")
            again.sendall(get("/healthz", server))
            status = answer(again)[0]
            again.close()
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)  # until the server has seen the close
        assert status == 200
    finally:
        for sock in held:
            sock.close()
