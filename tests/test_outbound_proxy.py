"""Outbound requests through an HTTP proxy (CONVERTLY_OUTBOUND_PROXY, HTTPS_PROXY/HTTP_PROXY,
NO_PROXY): https through a CONNECT tunnel with TLS checked against the name end to end, http in
absolute form, the proxy's credentials, the address check still applied to the target. The
proxy is a real one on loopback that resolves names from its own table, as a proxy with its own
DNS would."""

from __future__ import annotations

import base64
import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from convertly import outbound
from convertly.proxy import Proxy
from convertly.settings import Settings, SettingsError
from tests import images
from tests.api.support import SHARED_LIMITS, create_job, post, running_app, wait_for_job

PAYLOAD = b"source bytes " * 1000


@dataclass(frozen=True)
class Asked:
    method: str
    target: str
    authorization: str | None


class LoopbackProxy:
    """A forward proxy: CONNECT tunnels and absolute-form requests, names from `hosts`."""

    def __init__(self, hosts: dict[str, str], authorization: str | None = None) -> None:
        self.hosts = hosts
        self.authorization = authorization
        self.asked: list[Asked] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    return
                head += chunk
            head, _, rest = head.partition(b"\r\n\r\n")
            first, *lines = head.decode("latin-1").split("\r\n")
            method, target, _ = first.split(" ", 2)
            headers = dict(line.split(": ", 1) for line in lines)
            auth = headers.get("Proxy-Authorization")
            self.asked.append(Asked(method, target, auth))
            if self.authorization and auth != self.authorization:
                client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                               b"Proxy-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n")
                return
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                upstream = socket.create_connection((self.hosts.get(host, host), int(port)))
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                forward = rest
            else:
                url = urlsplit(target)
                assert url.scheme == "http" and url.hostname, target
                upstream = socket.create_connection(
                    (self.hosts.get(url.hostname, url.hostname), url.port or 80))
                kept = [line for line in lines
                        if not line.lower().startswith(("proxy-", "connection:"))]
                path = url.path + (f"?{url.query}" if url.query else "")
                forward = ("\r\n".join([f"{method} {path} HTTP/1.1", *kept,
                                        "Connection: close"]) + "\r\n\r\n").encode() + rest
            with upstream:
                upstream.sendall(forward)
                back = threading.Thread(target=_relay, args=(upstream, client))
                back.start()
                _relay(client, upstream)
                back.join()


def _relay(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


class Origin(ThreadingHTTPServer):
    """An origin and webhook receiver: GET answers PAYLOAD (or a PNG at /photo.png), POST
    records the body."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _OriginHandler)
        self.posted: list[bytes] = []
        self.port = self.server_address[1]


class _OriginHandler(BaseHTTPRequestHandler):
    server: Origin

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, body: bytes, kind: str = "application/octet-stream") -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/photo.png":
            self._answer(images.png(40, 30), "image/png")
        else:
            self._answer(PAYLOAD)

    def do_POST(self) -> None:
        self.server.posted.append(self.rfile.read(int(self.headers["Content-Length"])))
        self._answer(b"ok", "text/plain")


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(origin: Origin) -> Iterator[LoopbackProxy]:
    made = LoopbackProxy({"hooks.example.test": "127.0.0.1", "files.example.test": "127.0.0.1",
                          "other.example.test": "127.0.0.1"})
    yield made
    made.close()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test CA and a certificate for hooks.example.test signed by it."""
    d = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    subprocess.run(["openssl", "req", "-x509", *ec, "-keyout", d / "ca.key", "-out",
                    d / "ca.pem", "-days", "2", "-subj", "/CN=Convertly test CA",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "req", *ec, "-keyout", d / "leaf.key", "-out", d / "leaf.csr",
                    "-subj", "/CN=hooks.example.test"], check=True, capture_output=True)
    (d / "ext.cnf").write_text("subjectAltName=DNS:hooks.example.test\n"
                               "extendedKeyUsage=serverAuth\n")
    subprocess.run(["openssl", "x509", "-req", "-in", d / "leaf.csr", "-CA", d / "ca.pem",
                    "-CAkey", d / "ca.key", "-CAcreateserial", "-out", d / "leaf.pem",
                    "-days", "2", "-extfile", d / "ext.cnf"], check=True, capture_output=True)
    return d


@pytest.fixture
def tls_origin(origin: Origin, certificates: Path,
               monkeypatch: pytest.MonkeyPatch) -> Origin:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates / "leaf.pem", certificates / "leaf.key")
    origin.socket = context.wrap_socket(origin.socket, server_side=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates / "ca.pem"))  # trust the test CA
    return origin


def nowhere(host: str, port: int) -> list[str]:
    """This host's DNS knows none of the test names: only the proxy's table does."""
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def test_https_goes_through_a_connect_tunnel_with_tls_to_the_name(
        tls_origin: Origin, proxy: LoopbackProxy) -> None:
    url = f"https://hooks.example.test:{tls_origin.port}/hook"
    answer = outbound.post(url, b'{"event":1}', {"Content-Type": "application/json"},
                           timeout=5, allow_private=False, resolver=nowhere,
                           proxy=Proxy.parse(proxy.url))
    assert answer.status == 200 and answer.excerpt == "ok"
    assert tls_origin.posted == [b'{"event":1}']
    assert proxy.asked == [Asked("CONNECT", f"hooks.example.test:{tls_origin.port}", None)]

    # The certificate is checked against the URL's name inside the tunnel.
    with pytest.raises(outbound.DeliveryFailed, match=r"TLS|certificate"):
        outbound.post(f"https://other.example.test:{tls_origin.port}/hook", b"{}", {},
                      timeout=5, allow_private=False, resolver=nowhere,
                      proxy=Proxy.parse(proxy.url))
    # Without the proxy, this host cannot even find it.
    with pytest.raises(outbound.DeliveryFailed, match="could not resolve"):
        outbound.post(url, b"{}", {}, timeout=5, allow_private=False, resolver=nowhere)


def test_http_goes_in_absolute_form_with_the_proxy_credentials(
        origin: Origin, proxy: LoopbackProxy, tmp_path: Path) -> None:
    proxy.authorization = "Basic " + base64.b64encode(b"ops:p@ss word").decode()
    with_credentials = Proxy.parse(f"http://ops:p%40ss%20word@127.0.0.1:{proxy.port}")
    url = f"http://files.example.test:{origin.port}/a.bin?v=1"
    got = outbound.download(url, tmp_path / "a", max_bytes=10**6, timeout=5,
                            allow_private=False, setting="X", resolver=nowhere,
                            proxy=with_credentials)
    assert (got.size, (tmp_path / "a").read_bytes()) == (len(PAYLOAD), PAYLOAD)
    assert proxy.asked == [Asked("GET", url, proxy.authorization)]

    with pytest.raises(outbound.DownloadFailed, match="HTTP 407"):
        outbound.download(url, tmp_path / "b", max_bytes=10**6, timeout=5,
                          allow_private=False, setting="X", resolver=nowhere,
                          proxy=Proxy.parse(proxy.url))
    answer = outbound.post(f"http://hooks.example.test:{origin.port}/hook", b"{}", {},
                           timeout=5, allow_private=False, resolver=nowhere,
                           proxy=with_credentials)
    assert answer.status == 200 and origin.posted == [b"{}"]


def test_the_address_check_still_applies_to_the_target(proxy: LoopbackProxy,
                                                       tmp_path: Path) -> None:
    via = Proxy.parse(proxy.url)
    private = {"evil.example.test": ["10.1.2.3"]}
    with pytest.raises(outbound.DeliveryFailed, match="not a public address") as raised:
        outbound.post("https://evil.example.test/hook", b"{}", {}, timeout=5,
                      allow_private=False, resolver=lambda h, p: private[h], proxy=via)
    assert raised.value.permanent
    with pytest.raises(outbound.RefusedURLError, match="not a public address"):
        outbound.download("http://evil.example.test/a", tmp_path / "a", max_bytes=100,
                          timeout=5, allow_private=False, setting="X",
                          resolver=lambda h, p: private[h], proxy=via)
    with pytest.raises(outbound.RefusedURLError, match="not a public address"):
        outbound.post("http://127.0.0.1:9/hook", b"{}", {}, timeout=5, allow_private=False,
                      proxy=via)
    assert proxy.asked == []


def test_no_proxy_hosts_are_reached_directly(origin: Origin, proxy: LoopbackProxy,
                                             tmp_path: Path) -> None:
    via = Proxy.parse(proxy.url, " example.org, .internal.test,10.0.0.0/8 ,127.0.0.1")
    assert via.bypasses("example.org") and via.bypasses("cdn.example.org")
    assert via.bypasses("a.internal.test") and via.bypasses("10.9.8.7")
    assert not via.bypasses("badexample.org") and not via.bypasses("11.0.0.1")
    assert Proxy.parse(proxy.url, "*").bypasses("anything.test")
    got = outbound.download(f"http://127.0.0.1:{origin.port}/a", tmp_path / "a",
                            max_bytes=10**6, timeout=5, allow_private=True, setting="X",
                            proxy=via)
    assert got.size == len(PAYLOAD)
    assert proxy.asked == []


def test_settings_take_the_standard_proxy_variables() -> None:
    standard = Settings.from_env({"HTTPS_PROXY": "http://proxy.corp:3128",
                                  "HTTP_PROXY": "http://other:8080", "NO_PROXY": "corp"},
                                 env_file=None)
    assert (standard.outbound_proxy, standard.outbound_no_proxy) == (
        "http://proxy.corp:3128", "corp")
    assert Settings.from_env({"http_proxy": "http://other:8080"},
                             env_file=None).outbound_proxy == "http://other:8080"
    own = Settings.from_env({"HTTPS_PROXY": "http://proxy.corp:3128",
                             "CONVERTLY_OUTBOUND_PROXY": "http://egress:3128"}, env_file=None)
    assert own.outbound_proxy == "http://egress:3128"
    assert Settings.from_env({}, env_file=None).outbound_proxy == ""
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"CONVERTLY_OUTBOUND_PROXY": "https://egress:3128"}, env_file=None)
    message = str(raised.value)
    assert message.startswith("CONVERTLY_OUTBOUND_PROXY") and "\n" not in message


def test_source_urls_and_webhooks_of_the_service_go_through_the_proxy(
        origin: Origin, proxy: LoopbackProxy, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", workers=1, outbound_proxy=proxy.url,
                        **SHARED_LIMITS)
    url = f"http://files.example.test:{origin.port}/photo.png"
    hook = f"http://hooks.example.test:{origin.port}/hook"
    with running_app("embedded", settings) as env:
        tenant = env.new_tenant()
        response = post(env.client, "/api/convert", tenant, [], sourceUrl=url, format="webp")
        assert response.status_code == 200, response.text
        assert response.json()["files"][0]["width"] == 40
        assert proxy.asked == [Asked("GET", url, None)]

        job = wait_for_job(env.client, tenant, create_job(
            env.client, tenant, [("a.jpg", images.jpeg(20, 20))], format="png",
            callbackUrl=hook, callbackSecret="s" * 16))
        assert job["status"] == "completed"
        deadline = time.monotonic() + 30
        while not any(b'"conversion.completed"' in body for body in origin.posted):
            assert time.monotonic() < deadline, (proxy.asked, origin.posted)
            time.sleep(0.05)
    assert Asked("POST", hook, None) in proxy.asked
