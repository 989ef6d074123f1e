"""Requests to URLs that users give us (webhook receivers, source files): public addresses only.

A URL's host is resolved once, every address it resolves to must be public (global unicast),
and the connection goes to those checked addresses while the Host header and TLS SNI keep the
name, so a second DNS answer cannot point the request elsewhere (DNS rebinding). A webhook
POST follows no redirect and reads only a small excerpt of the answer. A source download
follows a few redirects, each hop checked like the first, and streams the body to a file
under a size limit and a deadline. `allow_private` lifts the address check, for servers on
one's own network; `setting` names the setting that does, in the refusals.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path, PurePosixPath
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

MAX_URL_LENGTH = 2048
EXCERPT_BYTES = 256  # of a receiver's answer, kept for the delivery log
USER_AGENT = "Convertly-Webhooks/1.0"
FETCH_USER_AGENT = "Convertly-Fetch/1.0"
WEBHOOK_SETTING = "CONVERTLY_WEBHOOK_ALLOW_PRIVATE"
MAX_REDIRECTS = 5
READ_TIMEOUT = 30.0  # the longest silence within a download
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


def _connect(ips: list[Address], port: int, timeout: float | None) -> socket.socket:
    """A connection to the first of `ips` that answers (each within `timeout`)."""
    error: OSError = OSError("no address to connect to")
    for ip in ips:
        try:
            sock = socket.create_connection((str(ip), port), timeout)
        except OSError as exc:
            error = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise error


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, ips: list[Address], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._ips = ips

    def connect(self) -> None:
        self.sock = _connect(self._ips, self.port, self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, ips: list[Address], timeout: float,
                 context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._ips = ips
        self._tls = context

    def connect(self) -> None:
        sock = _connect(self._ips, self.port, self.timeout)
        # SNI and certificate check against the name, not the address we connected to.
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def _open(target: Target, ips: list[Address], timeout: float) -> http.client.HTTPConnection:
    if target.scheme == "https":
        return _PinnedHTTPS(target.host, target.port, ips, timeout,
                            ssl.create_default_context())
    return _PinnedHTTP(target.host, target.port, ips, timeout)


def post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float,
         allow_private: bool, resolver: Resolver = system_resolver) -> Answer:
    """POST `body` to `url` at its checked address; the answer's status and the start of its
    body. Raise RefusedURLError for a URL we never send to, DeliveryFailed when no answer
    came. Redirects are answers like any other (not followed)."""
    target = check_url(url, allow_private=allow_private)
    ips = resolve(target, allow_private=allow_private, resolver=resolver)
    conn = _open(target, ips, timeout)
    try:
        conn.putrequest("POST", target.path, skip_accept_encoding=True)
        sent = {"User-Agent": USER_AGENT, "Content-Length": str(len(body)), **headers}
        for name, value in sent.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        excerpt = response.read(EXCERPT_BYTES)
        return Answer(status=response.status,
                      excerpt=excerpt.decode("utf-8", "replace"))
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryFailed(_describe(exc)) from exc
    finally:
        conn.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
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


@dataclass(frozen=True)
class Download:
    """A source written to disk: the name it goes by, its declared type and its size."""

    filename: str
    content_type: str
    size: int


def download(url: str, dest: Path, *, max_bytes: int, timeout: float, allow_private: bool,
             setting: str, resolver: Resolver = system_resolver) -> Download:
    """GET `url` into `dest`, following up to MAX_REDIRECTS redirects (each hop checked as
    the first), in at most `timeout` seconds and `max_bytes` bytes. Raise RefusedURLError
    for a URL we never fetch, DownloadTooLarge past the limit, DownloadFailed otherwise."""
    deadline = time.monotonic() + timeout
    for _ in range(MAX_REDIRECTS + 1):
        target = check_url(url, allow_private=allow_private, setting=setting)
        try:
            ips = resolve(target, allow_private=allow_private, resolver=resolver,
                          setting=setting)
        except DeliveryFailed as exc:
            if exc.permanent:
                raise RefusedURLError(exc.message) from exc
            raise DownloadFailed(exc.message) from exc
        conn = _open(target, ips, min(READ_TIMEOUT, max(deadline - time.monotonic(), 0.1)))
        try:
            conn.putrequest("GET", target.path, skip_accept_encoding=True)
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
            size = _save(response, dest, max_bytes, deadline, timeout)
            return Download(filename=_filename(response, url),
                            content_type=response.getheader("Content-Type") or "",
                            size=size)
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadFailed(_describe(exc)) from exc
        finally:
            conn.close()
    raise DownloadFailed(f"more than {MAX_REDIRECTS} redirects")


def _save(response: http.client.HTTPResponse, dest: Path, max_bytes: int, deadline: float,
          timeout: float) -> int:
    size = 0
    with dest.open("wb") as out:
        while chunk := response.read1(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise DownloadTooLarge(f"it is over the limit of {max_bytes:,} bytes")
            if time.monotonic() > deadline:
                raise DownloadFailed(f"it took longer than {timeout:g} s")
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
