"""Checking that a webhook event came from the server: each request carries
`convertly-signature: t=<unix time>,v1=<hex HMAC-SHA256 of "{t}.{body}">`, keyed with the
endpoint's secret (an account webhook's `whsec_...`, or a job's `callback_secret`)."""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "convertly-signature"
TOLERANCE = 300  # seconds an event's timestamp may be from now: older ones may be replays


def verify_signature(secret: str, body: bytes, header: str | None, *,
                     tolerance: float = TOLERANCE, now: float | None = None) -> bool:
    """True when `header` (the request's convertly-signature) signs `body` (the raw request
    body, before any JSON parsing) with `secret`, at a time within `tolerance` seconds of
    `now`. Compare in constant time; any malformed header is simply not valid."""
    if not header:
        return False
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body,
                        hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)
