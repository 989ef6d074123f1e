"""Requests to URLs that users give us (webhook receivers, source files): public addresses only.

A URL's host is resolved once, every address it resolves to must be public (global unicast),
and the connection goes to those checked addresses while the Host header and TLS SNI keep the
name, so a second DNS answer cannot point the request elsewhere (DNS rebinding). A webhook
POST follows no redirect and reads only a small excerpt of the answer. A source download
follows a few redirects, each hop checked like the first, and streams the body to a file
under a size limit. `allow_private` lifts the address check, for servers on one's own
network; `setting` names the setting that does, in the refusals.

Through a proxy (`Proxy`: CONVERTLY_OUTBOUND_PROXY, or HTTPS_PROXY/HTTP_PROXY with NO_PROXY),
the URL is checked the same way and its name resolved and checked here too, but the proxy
connects: an https URL through a CONNECT tunnel to `name:port` (TLS with the name, end to
end), an http URL as an absolute-form request. The proxy then resolves the name again itself,
so the pinned-address guarantee (no DNS rebinding between our check and the connection) is the
proxy's: use an egress proxy that refuses private addresses. A name this host cannot resolve
is left to the proxy; one that resolves here to a refused address is refused.

Every request has one deadline (`timeout`) over everything it does: connecting, the TLS
handshake, sending, the status line, the headers and the body (a download's redirects
included). It is enforced on the socket: each send and receive may block only for the time
that is left, so a server that trickles one byte a second is cut at the deadline, not at a
read timeout that each byte restarts. An answer's headers are limited in number
(MAX_HEADER_LINES) and in total size (MAX_HEADER_BYTES). A `Stop` ends a request from
another thread at once (its socket is shut down under the reading thread).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

from convertly.proxy import Proxy
from convertly.settings import Settings

MAX_URL_LENGTH = 2048
EXCERPT_BYTES = 256  # of a receiver's answer, kept for the delivery log
USER_AGENT = "Convertly-Webhooks/1.0"
FETCH_USER_AGENT = "Convertly-Fetch/1.0"
WEBHOOK_SETTING = "CONVERTLY_WEBHOOK_ALLOW_PRIVATE"
MAX_REDIRECTS = 5
MAX_HEADER_LINES = 64  # header lines in an answer (its status line not counted)
MAX_HEADER_BYTES = 64 * 1024  # status line and headers together
CHUNK = 1024 * 1024

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses it resolves to (tests replace DNS with a table)
Resolver = Callable[[str, int], list[str]]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT


class RefusedURLError(ValueError):
    """The URL is not one we send requests to; the message says why."""


class DeliveryFailed(Exception):
    """No HTTP answer: DNS, connection, TLS or timeout. `permanent` when trying again
    cannot help (the host resolves to a refused address)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


@dataclass(frozen=True)
class Answer:
    status: int
    excerpt: str


@dataclass(frozen=True)
class Target:
    """A checked URL: scheme, host name (IDNA), port and the path with its query."""

    scheme: str
    host: str
    port: int
    path: str


def proxy_from(settings: Settings) -> Proxy | None:
    """The outbound proxy the settings name (CONVERTLY_OUTBOUND_PROXY, standing in for
    HTTPS_PROXY/HTTP_PROXY), if any."""
    if not settings.outbound_proxy:
        return None
    return Proxy.parse(settings.outbound_proxy, settings.outbound_no_proxy)


def is_public(ip: Address) -> bool:
    """True for global unicast addresses; False for loopback, private, link-local, shared,
    multicast, reserved and unspecified ones, including IPv4 hidden in IPv6 forms."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public(ip.ipv4_mapped)
        if ip.sixtofour is not None and not is_public(ip.sixtofour):
            return False
        if ip in _NAT64:
            return is_public(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    elif ip in _SHARED:
        return False
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
        or ip.is_reserved or ip.is_unspecified
    )


def parse_url(url: str) -> Target:
    """Check a URL's shape (http or https, a host, no credentials); raise RefusedURLError."""
    if not url or len(url) > MAX_URL_LENGTH:
        raise RefusedURLError(f"must be an http or https URL of at most {MAX_URL_LENGTH} "
                              "characters.")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise RefusedURLError("must not contain spaces or control characters.")
    parts: SplitResult = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RefusedURLError("must be an absolute http:// or https:// URL.")
    if parts.username is not None or parts.password is not None:
        raise RefusedURLError("must not carry credentials; check the signature instead.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise RefusedURLError("has an invalid port.") from None
    host = parts.hostname or ""
    if not host:
        raise RefusedURLError("has no host.")
    if not _literal(host):
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise RefusedURLError("has a host name that is not valid.") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=parts.scheme, host=host, port=port, path=path)


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_url(url: str, *, allow_private: bool, setting: str = WEBHOOK_SETTING) -> Target:
    """`parse_url`, and refuse a literal address that is not public (names are checked when
    they are resolved, before each request)."""
    target = parse_url(url)
    literal = _literal(target.host)
    if literal is not None and not allow_private and not is_public(literal):
        raise RefusedURLError(f"{literal} is not a public address; only public addresses are "
                              f"reached unless {setting}=true.")
    if target.host.rstrip(".").lower() == "localhost" and not allow_private:
        raise RefusedURLError("localhost is not a public address.")
    return target


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def resolve(target: Target, *, allow_private: bool, resolver: Resolver = system_resolver,
            setting: str = WEBHOOK_SETTING) -> list[Address]:
    """The addresses to connect to, in the resolver's order. Every address the name
    resolves to must be public: one private answer among public ones is refused too."""
    try:
        found = [ipaddress.ip_address(a.split("%", 1)[0])
                 for a in resolver(target.host, target.port)]
    except (OSError, UnicodeError, ValueError) as exc:
        raise DeliveryFailed(f"could not resolve {target.host}: {exc}") from exc
    if not found:
        raise DeliveryFailed(f"{target.host} resolves to no address")
    if not allow_private:
        refused = [ip for ip in found if not is_public(ip)]
        if refused:
            raise DeliveryFailed(
                f"refused: {target.host} resolves to {refused[0]}, which is not a public "
                f"address (set {setting}=true to allow it)",
                permanent=True)
    return list(dict.fromkeys(found))


class Stop:
    """Ends a request from another thread: `set()` marks it and shuts its socket down, so a
    send or receive blocked in the requesting thread returns at once, and the request
    raises (DownloadCancelled for a download)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False
        self._sockets: list[socket.socket] = []

    @property
    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        with self._lock:
            self._set = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def _watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if not self._set:
                return
        _shut(sock)

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            if sock in self._sockets:
                self._sockets.remove(sock)


def _shut(sock: socket.socket) -> None:
    # socket.socket's own shutdown, also for a TLS socket: SSLSocket.shutdown would first
    # drop its TLS state under the thread that is reading it.
    with contextlib.suppress(OSError):  # not connected yet, or closed already
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class DeadlineExceeded(TimeoutError):
    """The request took its whole `timeout`."""


class Stopped(OSError):
    """The request was ended by its Stop."""


class _Deadline:
    """One request's end: `left()` is the time that remains, or raises once none does."""

    def __init__(self, seconds: float, stop: Stop | None) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.stop = stop

    def left(self) -> float:
        if self.stop is not None and self.stop.is_set:
            raise Stopped("stopped")
        left = self.at - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(f"no complete answer within {self.seconds:g} s")
        return left

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.at


class _TimedSocket(socket.socket):
    """A TCP socket whose every send and receive waits at most the request's remaining time
    (http.client reads through `recv_into` and writes through `sendall`)."""

    deadline: _Deadline | None = None

    def _arm(self) -> None:
        if self.deadline is not None:
            self.settimeout(self.deadline.left())

    def recv(self, *args: Any, **kwargs: Any) -> bytes:
        self._arm()
        return super().recv(*args, **kwargs)

    def recv_into(self, *args: Any, **kwargs: Any) -> int:
        self._arm()
        return super().recv_into(*args, **kwargs)

    def send(self, *args: Any, **kwargs: Any) -> int:
        self._arm()
        return super().send(*args, **kwargs)

    def sendall(self, *args: Any, **kwargs: Any) -> None:
        self._arm()  # a timeout bounds the whole of sendall
        super().sendall(*args, **kwargs)


class _TimedSSLSocket(_TimedSocket, ssl.SSLSocket):
    """The same for TLS: `_TimedSocket`'s methods, each going on to `ssl.SSLSocket`'s (next in
    the method order), on the socket that replaces it once the handshake (itself bounded by
    the time left when it starts) is done."""


def _connect(ips: list[Address], port: int, deadline: _Deadline) -> _TimedSocket:
    """A connection to the first of `ips` that answers, within the deadline."""
    error: OSError = OSError("no address to connect to")
    for ip in ips:
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        sock = _TimedSocket(family, socket.SOCK_STREAM)
        sock.deadline = deadline
        if deadline.stop is not None:
            deadline.stop._watch(sock)
        try:
            sock.settimeout(deadline.left())
            sock.connect((str(ip), port))
        except (DeadlineExceeded, Stopped):
            _close(sock, deadline)
            raise
        except OSError as exc:
            _close(sock, deadline)
            error = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise error


def _close(sock: socket.socket, deadline: _Deadline) -> None:
    if deadline.stop is not None:
        deadline.stop._forget(sock)
    sock.close()


class HeaderLimitError(http.client.HTTPException):
    """The answer's headers are over MAX_HEADER_LINES lines or MAX_HEADER_BYTES bytes."""


class _HeaderBudget:
    """The answer's file while its status line and headers are read (http.client reads them
    with `readline`): counts their lines and bytes against the limits."""

    def __init__(self, fp: Any) -> None:
        self._fp = fp
        self._lines = 0
        self._bytes = 0
        self._status_next = True

    def readline(self, limit: int = -1) -> bytes:
        line: bytes = self._fp.readline(limit)
        self._bytes += len(line)
        if self._bytes > MAX_HEADER_BYTES:
            raise HeaderLimitError(f"its headers are over {MAX_HEADER_BYTES:,} bytes")
        if self._status_next:
            self._status_next = False
        elif line in (b"\r\n", b"\n", b""):
            self._status_next = True  # the end of a header block (a 1xx answer's, too)
        else:
            self._lines += 1
        if self._lines > MAX_HEADER_LINES:
            raise HeaderLimitError(f"it has more than {MAX_HEADER_LINES} header lines")
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fp, name)


class _LimitedResponse(http.client.HTTPResponse):
    def begin(self) -> None:
        fp = self.fp
        self.fp = _HeaderBudget(fp)  # type: ignore[assignment]
        try:
            super().begin()
        finally:
            self.fp = fp


class _PinnedHTTP(http.client.HTTPConnection):
    response_class = _LimitedResponse

    def __init__(self, host: str, port: int, ips: list[Address], deadline: _Deadline) -> None:
        super().__init__(host, port)
        self._ips = ips
        self._deadline = deadline

    def connect(self) -> None:
        self.sock = _connect(self._ips, self.port, self._deadline)


class ProxyRefused(OSError):
    """The proxy answered a CONNECT with something other than 200."""


def _tunnel(sock: socket.socket, host: str, port: int, proxy: Proxy) -> None:
    """Ask the proxy on `sock` for a tunnel to host:port; ProxyRefused unless it agrees."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
    # The proxy sends nothing of the tunnel before our TLS hello, so reading its answer
    # through a buffered file leaves nothing of the tunnel behind in the buffer.
    answer = _LimitedResponse(sock, method="CONNECT")
    try:
        answer.begin()
        if answer.status != 200:
            raise ProxyRefused(f"the proxy {proxy.host}:{proxy.port} refused a tunnel to "
                               f"{authority}: HTTP {answer.status}")
    finally:
        answer.close()  # its file only; the socket stays open


class _PinnedHTTPS(http.client.HTTPSConnection):
    response_class = _LimitedResponse
    proxy: Proxy | None = None  # connect through this proxy's tunnel (`_ips` are its)

    def __init__(self, host: str, port: int, ips: list[Address], deadline: _Deadline,
                 context: ssl.SSLContext) -> None:
        super().__init__(host, port, context=context)
        self._ips = ips
        self._deadline = deadline
        self._tls = context

    def connect(self) -> None:
        deadline = self._deadline
        if self.proxy is None:
            sock = _connect(self._ips, self.port, deadline)
        else:
            # TLS with the target inside the proxy's tunnel.
            sock = _connect(self._ips, self.proxy.port, deadline)
            try:
                _tunnel(sock, self.host, self.port, self.proxy)
            except BaseException:
                _close(sock, deadline)
                raise
        sock.settimeout(deadline.left())  # bounds the whole handshake
        try:
            # SNI and certificate check against the name, not the address we connected to.
            tls = self._tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            _close(sock, deadline)
            raise
        if deadline.stop is not None:
            deadline.stop._forget(sock)  # its descriptor now belongs to `tls`
            deadline.stop._watch(tls)
        assert isinstance(tls, _TimedSSLSocket)
        tls.deadline = deadline
        self.sock = tls


def _open(target: Target, ips: list[Address], deadline: _Deadline,
          proxy: Proxy | None = None) -> http.client.HTTPConnection:
    """A connection for `target`: to its checked `ips`, or through `proxy` (a CONNECT
    tunnel for https, the proxy itself for http: send `_request_path`)."""
    if proxy is not None:
        ips = _proxy_addresses(proxy)
    if target.scheme == "https":
        context = ssl.create_default_context()
        context.sslsocket_class = _TimedSSLSocket
        if proxy is None:
            return _PinnedHTTPS(target.host, target.port, ips, deadline, context)
        conn = _PinnedHTTPS(target.host, target.port, ips, deadline, context)
        conn.proxy = proxy
        return conn
    if proxy is None:
        return _PinnedHTTP(target.host, target.port, ips, deadline)
    return _PinnedHTTP(proxy.host, proxy.port, ips, deadline)


def _proxy_addresses(proxy: Proxy) -> list[Address]:
    """The proxy's addresses: the operator's choice, so private ones are fine."""
    try:
        return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in
                socket.getaddrinfo(proxy.host, proxy.port, type=socket.SOCK_STREAM)]
    except (OSError, UnicodeError, ValueError) as exc:
        raise DeliveryFailed(f"could not resolve the proxy {proxy.host}: {exc}") from exc


def _request_path(target: Target, proxy: Proxy | None) -> str:
    """What the request line names: the path, or the whole URL for an http proxy."""
    if proxy is None or target.scheme == "https":
        return target.path
    host = f"[{target.host}]" if ":" in target.host else target.host
    port = "" if target.port == 80 else f":{target.port}"
    return f"http://{host}{port}{target.path}"


def _route(target: Target, proxy: Proxy | None, *, allow_private: bool, resolver: Resolver,
           setting: str) -> tuple[list[Address], Proxy | None]:
    """The checked addresses of `target` and the proxy to go through (None: direct). Through
    a proxy, a name this host cannot resolve is left to the proxy."""
    via = proxy if proxy is not None and not proxy.bypasses(target.host) else None
    try:
        return resolve(target, allow_private=allow_private, resolver=resolver,
                       setting=setting), via
    except DeliveryFailed as exc:
        if via is None or exc.permanent:
            raise
        return [], via


def _finish(conn: http.client.HTTPConnection, deadline: _Deadline) -> None:
    if deadline.stop is not None and conn.sock is not None:
        deadline.stop._forget(conn.sock)
    conn.close()


def post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float,
         allow_private: bool, resolver: Resolver = system_resolver,
         proxy: Proxy | None = None) -> Answer:
    """POST `body` to `url` at its checked address; the answer's status and the start of its
    body, all within `timeout` seconds. Raise RefusedURLError for a URL we never send to,
    DeliveryFailed when no answer came. Redirects are answers like any other (not
    followed)."""
    target = check_url(url, allow_private=allow_private)
    deadline = _Deadline(timeout, None)
    ips, via = _route(target, proxy, allow_private=allow_private, resolver=resolver,
                      setting=WEBHOOK_SETTING)
    conn = _open(target, ips, deadline, via)
    try:
        conn.putrequest("POST", _request_path(target, via), skip_accept_encoding=True)
        sent = {"User-Agent": USER_AGENT, "Content-Length": str(len(body)), **headers}
        if via is not None and via.authorization and target.scheme == "http":
            sent["Proxy-Authorization"] = via.authorization
        for name, value in sent.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        excerpt = response.read(EXCERPT_BYTES)
        return Answer(status=response.status,
                      excerpt=excerpt.decode("utf-8", "replace"))
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryFailed(_describe(exc, deadline)) from exc
    finally:
        _finish(conn, deadline)


def _describe(exc: BaseException, deadline: _Deadline) -> str:
    if isinstance(exc, TimeoutError | socket.timeout) or deadline.passed:
        return f"timed out: no complete answer within {deadline.seconds:g} s"
    if isinstance(exc, HeaderLimitError):
        return f"the answer was refused: {exc}"
    if isinstance(exc, http.client.LineTooLong):
        return "the answer was refused: a header line is too long"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.HTTPException):
        return f"invalid HTTP answer: {type(exc).__name__}"
    return f"{type(exc).__name__}: {exc}"


class DownloadFailed(Exception):
    """The source could not be downloaded; the message says why, for the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DownloadTooLarge(DownloadFailed):
    """The source is larger than the limit."""


class DownloadCancelled(DownloadFailed):
    """The download was ended by its Stop (its client went away)."""


@dataclass(frozen=True)
class Download:
    """A source written to disk: the name it goes by, its declared type and its size."""

    filename: str
    content_type: str
    size: int


def download(url: str, dest: Path, *, max_bytes: int, timeout: float, allow_private: bool,
             setting: str, resolver: Resolver = system_resolver,
             stop: Stop | None = None, proxy: Proxy | None = None) -> Download:
    """GET `url` into `dest`, following up to MAX_REDIRECTS redirects (each hop checked as
    the first), in at most `timeout` seconds in all and `max_bytes` bytes. Raise
    RefusedURLError for a URL we never fetch, DownloadTooLarge past the limit,
    DownloadCancelled once `stop` is set, DownloadFailed otherwise."""
    deadline = _Deadline(timeout, stop)
    for _ in range(MAX_REDIRECTS + 1):
        target = check_url(url, allow_private=allow_private, setting=setting)
        try:
            ips, via = _route(target, proxy, allow_private=allow_private, resolver=resolver,
                              setting=setting)
            conn = _open(target, ips, deadline, via)
        except DeliveryFailed as exc:
            if exc.permanent:
                raise RefusedURLError(exc.message) from exc
            raise DownloadFailed(exc.message) from exc
        response: http.client.HTTPResponse | None = None
        try:
            conn.putrequest("GET", _request_path(target, via), skip_accept_encoding=True)
            if via is not None and via.authorization and target.scheme == "http":
                conn.putheader("Proxy-Authorization", via.authorization)
            conn.putheader("User-Agent", FETCH_USER_AGENT)
            conn.putheader("Accept-Encoding", "identity")
            conn.endheaders()
            response = conn.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise DownloadFailed(f"HTTP {response.status} without a Location")
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise DownloadFailed(f"the server answered HTTP {response.status}")
            declared = response.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise DownloadTooLarge(f"it is {int(declared):,} bytes, over the limit of "
                                       f"{max_bytes:,}")
            size = _save(response, dest, max_bytes, deadline)
            return Download(filename=_filename(response, url),
                            content_type=response.getheader("Content-Type") or "",
                            size=size)
        except (OSError, http.client.HTTPException) as exc:
            if stop is not None and stop.is_set:
                raise DownloadCancelled("the download was stopped") from exc
            if isinstance(exc, TimeoutError) or deadline.passed:
                raise DownloadFailed(f"it took longer than {timeout:g} s") from exc
            raise DownloadFailed(_describe(exc, deadline)) from exc
        finally:
            # A refused answer's stream too, or a traceback kept (a queued transfer's
            # failure) holds its socket open.
            if response is not None:
                response.close()
            _finish(conn, deadline)
    raise DownloadFailed(f"more than {MAX_REDIRECTS} redirects")


def _save(response: http.client.HTTPResponse, dest: Path, max_bytes: int,
          deadline: _Deadline) -> int:
    size = 0
    with dest.open("wb") as out:
        while chunk := response.read1(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise DownloadTooLarge(f"it is over the limit of {max_bytes:,} bytes")
            deadline.left()  # also between reads that each came in time
            out.write(chunk)
    return size


_UNSAFE = re.compile(r"[\x00-\x1f/\\]")


def _filename(response: http.client.HTTPResponse, url: str) -> str:
    """The name the server gives (Content-Disposition), else the URL's last path segment."""
    header = response.getheader("Content-Disposition")
    name = None
    if header:
        message = Message()
        message["content-disposition"] = header
        name = message.get_filename()
    if not name:
        name = unquote(PurePosixPath(urlsplit(url).path).name)
    name = _UNSAFE.sub("_", name or "").strip(" .")[:255]
    return name or "download"
