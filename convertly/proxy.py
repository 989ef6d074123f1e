"""An HTTP proxy for outbound requests (webhooks, `sourceUrl` downloads): where it is, its
credentials, and the hosts reached without it (NO_PROXY). `convertly.outbound` connects
through it."""

from __future__ import annotations

import base64
import contextlib
import ipaddress
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@dataclass(frozen=True)
class Proxy:
    """An HTTP proxy for outbound requests, and the hosts reached without it (NO_PROXY
    entries: `*`, a name and its subdomains, an address or a network)."""

    host: str
    port: int
    authorization: str | None = None  # the Proxy-Authorization value, from user:password@
    no_proxy: tuple[str, ...] = ()

    @classmethod
    def parse(cls, url: str, no_proxy: str = "") -> Proxy:
        """From `http://[user:password@]host[:port]`; ValueError says what is wrong."""
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http":
            raise ValueError(f"expected an http:// proxy URL (the proxy itself is reached "
                             f"over plain HTTP; https URLs go through it in a CONNECT "
                             f"tunnel), got {url!r}")
        try:
            port = parts.port or 80
        except ValueError:
            raise ValueError(f"invalid port in {url!r}") from None
        if not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise ValueError(f"expected http://host:port, got {url!r}")
        authorization = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(pair.encode()).decode()
        entries = tuple(e.strip().lower() for e in no_proxy.split(",") if e.strip())
        return cls(parts.hostname, port, authorization, entries)

    def bypasses(self, host: str) -> bool:
        """Whether `host` (a name or an address) is reached directly (NO_PROXY)."""
        host = host.rstrip(".").lower()
        literal = _literal(host)
        for entry in self.no_proxy:
            if entry == "*":
                return True
            if literal is not None:
                with contextlib.suppress(ValueError):
                    if literal in ipaddress.ip_network(entry.strip("[]"), strict=False):
                        return True
                continue
            name = entry.lstrip(".").rsplit(":", 1)[0] if entry.count(":") == 1 else entry
            name = name.lstrip("*").lstrip(".")
            if name and (host == name or host.endswith("." + name)):
                return True
        return False
