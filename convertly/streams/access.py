"""Who may play a stream: signed playback tokens, allowed domains, and the CORS headers the
playback routes answer with.

A signed stream's URLs carry `expires` (Unix seconds) and `token`, an HMAC of the playback
id and that time under a key derived from the server's secret for playback only (a
download or upload token never passes for one). Tokens are checked against the current
secret and the older ones still accepted, like every signed link.

`allowedDomains` is checked against the browser's Origin header, else its Referer: a request
naming another site is refused, and so is one naming none (a browser always names the page
that embeds the player; the dashboard's page sends its own origin).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from urllib.parse import urlencode, urlsplit

from convertly.errors import ForbiddenError

MIME_TYPES = {
    "m3u8": "application/vnd.apple.mpegurl",
    "mpd": "application/dash+xml",
    "m4s": "video/iso.segment",
    "mp4": "video/mp4",
    "m4v": "video/mp4",
    "m4a": "audio/mp4",
    "ts": "video/mp2t",
    "vtt": "text/vtt; charset=utf-8",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
}
MANIFEST_EXTENSIONS = frozenset({"m3u8", "mpd"})


def mime_type(name: str) -> str | None:
    """The Content-Type of a playback file by its extension; None for anything a player
    is not served."""
    return MIME_TYPES.get(name.rsplit(".", 1)[-1].lower()) if "." in name else None


def _key(secret: bytes) -> bytes:
    return hmac.new(secret, b"convertly video playback", hashlib.sha256).digest()


def _mac(playback_id: str, expires: int, secret: bytes) -> str:
    digest = hmac.new(_key(secret), f"{playback_id}:{expires}".encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def playback_query(playback_id: str, ttl_seconds: int, secret: bytes,
                   now: float | None = None) -> str:
    """The query string (`expires=...&token=...`) that opens `playback_id` for
    `ttl_seconds` from now."""
    expires = int(time.time() if now is None else now) + ttl_seconds
    return urlencode({"expires": expires, "token": _mac(playback_id, expires, secret)})


def check_token(playback_id: str, expires: str | None, token: str | None, secret: bytes,
                old: Sequence[bytes] = (), now: float | None = None) -> None:
    """Raise ForbiddenError unless `token` signs `playback_id` until `expires`, and that time
    has not passed."""
    if not expires or not token:
        raise ForbiddenError("This stream's playback is signed: use the manifest URL the API "
                             "returns (it carries `expires` and `token`).")
    try:
        until = int(expires)
    except ValueError:
        raise ForbiddenError("This playback link is invalid.") from None
    given = token.encode()
    valid = False
    for candidate in (secret, *old):
        valid |= hmac.compare_digest(_mac(playback_id, until, candidate).encode(), given)
    if not valid:
        raise ForbiddenError("This playback link is invalid.")
    if until < (time.time() if now is None else now):
        raise ForbiddenError("This playback link has expired; get the stream again for a "
                             "fresh manifest URL.")


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def domain_matches(host: str, allowed: str) -> bool:
    """Whether `host` is the `allowed` domain ("app.example.com"), or under it when that is
    written `*.example.com` (the bare domain included)."""
    allowed = allowed.lower().strip().rstrip(".")
    if allowed.startswith("*."):
        base = allowed[2:]
        return host == base or host.endswith("." + base)
    return host == allowed


def requesting_host(origin: str | None, referer: str | None) -> str:
    """The host of the page asking: its Origin, else its Referer; "" when it names none."""
    if origin and origin != "null":
        return _host(origin)
    return _host(referer) if referer else ""


def check_domain(allowed_domains: Sequence[str], origin: str | None, referer: str | None,
                 own_hosts: Sequence[str] = ()) -> None:
    """Raise ForbiddenError when `allowed_domains` is set and the requesting page is not on
    one of them (nor on this server itself, `own_hosts`)."""
    if not allowed_domains:
        return
    host = requesting_host(origin, referer)
    if not host:
        raise ForbiddenError("This stream plays only on its allowed domains, and this "
                             "request names no page (no Origin or Referer header).")
    if host in own_hosts or any(domain_matches(host, d) for d in allowed_domains):
        return
    raise ForbiddenError(f"This stream does not play on {host}: it is not one of the "
                         "stream's allowed domains.")


def cors_headers(origin: str | None, allowed_domains: Sequence[str]) -> dict[str, str]:
    """CORS headers for a playback answer: any origin for an unrestricted stream; the asking
    origin itself (and `Vary: Origin`) for one restricted to domains."""
    headers = {
        "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
        "Access-Control-Allow-Headers": "Range",
        "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges",
        "Access-Control-Max-Age": "600",
    }
    if not allowed_domains:
        headers["Access-Control-Allow-Origin"] = "*"
    elif origin:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Vary"] = "Origin"
    return headers
