"""The outbound guard: requests to user-given URLs reach public addresses only, at the address
that was checked, without following redirects, within one deadline over the whole request
(servers that trickle their handshake, headers or body are cut at it), with limits on an
answer's headers, and stoppable from another thread."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from convertly import outbound
from tests.receiver import Receiver
from tests.trickle import BODY_TRICKLE, ENDLESS_HEADERS, Trickler

REFUSED_LITERALS = [
    "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "[::1]", "[fc00::1]",
    "[fd12:3456::1]", "[fe80::1]", "[::ffff:127.0.0.1]", "[::ffff:10.0.0.1]", "[::]",
    "[2002:7f00:1::]", "[64:ff9b::a00:1]", "[ff02::1]",
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "[2606:4700:4700::1111]"]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def table(entries: dict[str, list[str]]) -> outbound.Resolver:
    """A resolver that answers from `entries` (a stand-in for DNS)."""
    def resolve(host: str, port: int) -> list[str]:
        if host not in entries:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return entries[host]
    return resolve


@pytest.mark.parametrize("host", REFUSED_LITERALS)
def test_non_public_literals_are_refused(host: str) -> None:
    with pytest.raises(outbound.RefusedURLError, match="not a public address"):
        outbound.check_url(f"http://{host}:8080/hook", allow_private=False)
    assert not outbound.is_public(ipaddress.ip_address(host.strip("[]")))
    # ... unless private receivers are allowed
    assert outbound.check_url(f"http://{host}:8080/hook", allow_private=True).port == 8080


@pytest.mark.parametrize("host", PUBLIC)
def test_public_literals_pass(host: str) -> None:
    target = outbound.check_url(f"https://{host}/a/b?c=1", allow_private=False)
    assert (target.scheme, target.port, target.path) == ("https", 443, "/a/b?c=1")
    assert outbound.is_public(ipaddress.ip_address(host.strip("[]")))


@pytest.mark.parametrize(("url", "reason"), [
    ("ftp://example.com/x", "http"),
    ("example.com/hook", "http"),
    ("https:///nohost", "http"),
    ("https://user:secret@example.com/x", "credentials"),
    ("https://example.com:99999/x", "port"),
    ("https://example.com/a b", "spaces"),
    ("https://example.com/" + "a" * 3000, "2048"),
    ("http://localhost/x", "localhost"),
])
def test_malformed_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(outbound.RefusedURLError, match=reason):
        outbound.check_url(url, allow_private=False)


def test_a_name_resolving_to_loopback_is_refused() -> None:
    """The real resolver: `localhost` is loopback (/etc/hosts)."""
    target = outbound.Target(scheme="http", host="localhost", port=80, path="/")
    with pytest.raises(outbound.DeliveryFailed, match="not a public address") as err:
        outbound.resolve(target, allow_private=False)
    assert err.value.permanent
    assert all(ip.is_loopback for ip in outbound.resolve(target, allow_private=True))


@pytest.mark.parametrize("answers", [["127.0.0.1"], ["10.0.0.7"], ["169.254.1.1"], ["::1"],
                                     ["fc00::9"], ["93.184.216.34", "10.0.0.1"]])
def test_names_are_checked_after_resolution(answers: list[str]) -> None:
    """A private answer among public ones is refused too (rebinding tries exactly that)."""
    with pytest.raises(outbound.DeliveryFailed, match="not a public address"):
        outbound.post("https://hooks.example.test/x", b"{}", {}, timeout=1,
                      allow_private=False,
                      resolver=table({"hooks.example.test": answers}))


def test_unresolvable_names_fail_for_now_not_for_good() -> None:
    with pytest.raises(outbound.DeliveryFailed, match="could not resolve") as err:
        outbound.post("https://nowhere.example.test/x", b"{}", {}, timeout=1,
                      allow_private=False, resolver=table({}))
    assert not err.value.permanent


def test_the_request_goes_to_the_checked_address_with_the_name_as_host(
        receiver: Receiver) -> None:
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.2", "127.0.0.1"]  # nothing listens on the first

    answer = outbound.post(f"http://hooks.example.test:{receiver.port}/pinned?x=1", b'{"a":1}',
                           {"X-Test": "yes"}, timeout=2, allow_private=True, resolver=resolve)
    assert (answer.status, answer.excerpt) == (200, "accepted")
    assert calls == ["hooks.example.test"]  # resolved once, then connected to that address
    [got] = receiver.at("/pinned?x=1")
    assert got.headers["host"] == f"hooks.example.test:{receiver.port}"
    assert (got.body, got.headers["x-test"]) == (b'{"a":1}', "yes")
    assert got.headers["content-length"] == "7"
    assert got.headers["user-agent"].startswith("Convertly-Webhooks")


def test_redirects_are_not_followed_and_answers_are_cut_short(receiver: Receiver) -> None:
    receiver.answer("/moved", 302)
    answer = outbound.post(receiver.url("/moved"), b"{}", {}, timeout=2, allow_private=True)
    assert answer.status == 302
    assert receiver.at("/redirected") == []
    receiver.answer("/error", 500)
    answer = outbound.post(receiver.url("/error"), b"{}", {}, timeout=2, allow_private=True)
    assert answer.status == 500
    assert len(answer.excerpt.encode()) == outbound.EXCERPT_BYTES  # of a 2 KB answer


def test_a_slow_receiver_times_out(receiver: Receiver) -> None:
    receiver.answer("/slow", delay=1.0)
    with pytest.raises(outbound.DeliveryFailed, match="timed out") as err:
        outbound.post(receiver.url("/slow"), b"{}", {}, timeout=0.2, allow_private=True)
    assert not err.value.permanent


def test_a_closed_port_is_a_connection_failure() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(outbound.DeliveryFailed, match="refused"):
        outbound.post(f"http://127.0.0.1:{port}/", b"{}", {}, timeout=1, allow_private=True)


def test_https_checks_the_certificate_against_the_name() -> None:
    """A TLS server with no certificate a client trusts: the handshake fails; no answer."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n")  # not TLS at all
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(outbound.DeliveryFailed, match=r"TLS|SSL|EOF|Connection"):
            outbound.post(f"https://hooks.example.test:{port}/", b"{}", {}, timeout=2,
                          allow_private=True,
                          resolver=table({"hooks.example.test": ["127.0.0.1"]}))
    finally:
        thread.join(2)
        server.close()


# --- one deadline over the whole request ------------------------------------------------------

DEADLINE = 1.0
TLS_HELLO_TRICKLE = b"\x16\x03\x03\x40\x00\x02" + b"\x00" * 20_000  # a ServerHello, slowly


def _fetch(url: str, dest: Path, timeout: float = DEADLINE,
           stop: outbound.Stop | None = None) -> outbound.Download:
    return outbound.download(url, dest, max_bytes=10**6, timeout=timeout, allow_private=True,
                             setting="CONVERTLY_FETCH_ALLOW_PRIVATE", stop=stop,
                             resolver=table({"origin.example.test": ["127.0.0.1"],
                                            "127.0.0.1": ["127.0.0.1"]}))


def _cut(call: Callable[[], object], error: type[Exception], says: str) -> float:
    started = time.monotonic()
    with pytest.raises(error, match=says):
        call()
    return time.monotonic() - started


@pytest.mark.parametrize(("payload", "interval", "step"), [
    (ENDLESS_HEADERS, 0.2, 1),  # a header byte every 0.2 s: each read comes in time
    (BODY_TRICKLE, 0.1, 100),  # the body, 1 KB/s
], ids=["headers", "body"])
def test_a_trickling_origin_is_cut_at_the_deadline(tmp_path: Path, payload: bytes,
                                                   interval: float, step: int) -> None:
    with Trickler(payload, interval, step) as origin:
        took = _cut(lambda: _fetch(origin.url("/a.jpg"), tmp_path / "a"),
                    outbound.DownloadFailed, f"longer than {DEADLINE:g} s")
        assert DEADLINE - 0.1 < took < DEADLINE + 1, took
        # The connection is closed, not left open (the origin notices between two sends).
        assert origin.wait_closed(interval + 1) < interval + 1


def test_a_trickling_receiver_is_cut_at_the_deadline() -> None:
    with Trickler(ENDLESS_HEADERS, 0.2) as receiver:
        took = _cut(lambda: outbound.post(receiver.url("/hook"), b"{}", {}, timeout=DEADLINE,
                                          allow_private=True),
                    outbound.DeliveryFailed, f"timed out: no complete answer within {DEADLINE:g}")
        assert DEADLINE - 0.1 < took < DEADLINE + 1, took


def test_a_trickled_tls_handshake_is_cut_at_the_deadline(tmp_path: Path) -> None:
    with Trickler(TLS_HELLO_TRICKLE, 0.2) as origin:
        url = f"https://origin.example.test:{origin.port}/a.jpg"
        took = _cut(lambda: _fetch(url, tmp_path / "a"), outbound.DownloadFailed,
                    f"longer than {DEADLINE:g} s")
        assert DEADLINE - 0.1 < took < DEADLINE + 1, took


@pytest.mark.parametrize(("headers", "says"), [
    (b"".join(b"X-H%d: 1\r\n" % i for i in range(64)), "more than 64 header lines"),
    (b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 2000) for i in range(40)), "over 65,536 bytes"),
], ids=["count", "size"])
def test_answers_with_too_many_headers_are_refused(tmp_path: Path, headers: bytes,
                                                   says: str) -> None:
    answer = b"HTTP/1.1 200 OK\r\n" + headers + b"Content-Length: 2\r\n\r\nok"
    with Trickler(answer, 0, step=len(answer)) as origin:
        with pytest.raises(outbound.DownloadFailed, match=says):
            _fetch(origin.url("/a.jpg"), tmp_path / "a")
        with pytest.raises(outbound.DeliveryFailed, match=says):
            outbound.post(origin.url("/hook"), b"{}", {}, timeout=2, allow_private=True)
    # Just under both limits: taken.
    fine = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(63))
    answer = b"HTTP/1.1 200 OK\r\n" + fine + b"Content-Length: 2\r\n\r\nok"
    with Trickler(answer, 0, step=len(answer)) as origin:
        assert _fetch(origin.url("/a.jpg"), tmp_path / "b").size == 2


def test_a_stopped_download_ends_at_once(tmp_path: Path) -> None:
    stop = outbound.Stop()
    with Trickler(BODY_TRICKLE, 0.2, 10) as origin:
        threading.Timer(0.5, stop.set).start()
        took = _cut(lambda: _fetch(origin.url("/a.jpg"), tmp_path / "a", timeout=30,
                                   stop=stop),
                    outbound.DownloadCancelled, "stopped")
        assert took < 1.5, took
        assert origin.wait_closed(2) < 2
    # A stop set before the request starts stops it before it connects.
    with Trickler(BODY_TRICKLE, 0.2, 10) as origin, pytest.raises(outbound.DownloadCancelled):
        _fetch(origin.url("/a.jpg"), tmp_path / "b", stop=stop)
