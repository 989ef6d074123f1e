"""Signed, expiring download links: the token carries what to serve and an HMAC over it.

Links are signed with one secret and verified against it and any older secrets still
accepted (CONVERTLY_SECRET_KEYS_OLD), so the signing secret can be rotated without breaking
the links already handed out."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from convertly.errors import ForbiddenError


@dataclass(frozen=True)
class Grant:
    """Permission to read one stored object until `expires`."""

    key: str
    tenant: str
    filename: str
    mime_type: str
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(grant: Grant, secret: bytes) -> str:
    payload = _b64(
        json.dumps(
            [grant.key, grant.tenant, grant.filename, grant.mime_type, grant.expires],
            separators=(",", ":"),
        ).encode()
    )
    mac = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def _signed_by(payload: str, mac: str, secrets_: Sequence[bytes]) -> bool:
    """Whether `mac` is the HMAC of `payload` under any of `secrets_` (each one compared in
    constant time)."""
    given = _unb64(mac)
    found = False
    for secret in secrets_:
        expected = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
        found |= hmac.compare_digest(expected, given)
    return found


def verify(token: str, secret: bytes, now: float | None = None,
           old: Sequence[bytes] = ()) -> Grant:
    """The grant inside `token`, signed with `secret` or one of the `old` secrets still
    accepted; ForbiddenError when forged, altered or expired."""
    payload, _, mac = token.partition(".")
    try:
        if not _signed_by(payload, mac, [secret, *old]):
            raise ValueError("bad signature")
        key, tenant, filename, mime_type, expires = json.loads(_unb64(payload))
        grant = Grant(str(key), str(tenant), str(filename), str(mime_type), int(expires))
    except (ValueError, TypeError) as exc:
        raise ForbiddenError("This download link is invalid.") from exc
    if grant.expires < (time.time() if now is None else now):
        raise ForbiddenError("This download link has expired; request a new one.")
    return grant


def load_or_create_secret(configured: str, data_dir: Path) -> bytes:
    """The configured secret, else one kept in `data_dir/secret_key` (created once, 0600)."""
    if configured:
        return configured.encode()
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"secret_key.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # first writer wins when several processes start together
        tmp.unlink(missing_ok=True)
    return path.read_text().strip().encode()


def old_secrets(configured: str) -> tuple[bytes, ...]:
    """The previous secrets still accepted for verifying links (CONVERTLY_SECRET_KEYS_OLD,
    comma-separated), in order."""
    return tuple(part.strip().encode() for part in configured.split(",") if part.strip())


@dataclass(frozen=True)
class UploadGrant:
    """Permission to write one object (a direct upload) of at most `max_bytes` until
    `expires`. Signed with a key derived for uploads only, so a download link can never
    pass for an upload link, nor the other way round."""

    key: str
    tenant: str
    file_id: str
    max_bytes: int
    expires: int


def _upload_secret(secret: bytes) -> bytes:
    return hmac.new(secret, b"convertly direct upload", hashlib.sha256).digest()


def sign_upload(grant: UploadGrant, secret: bytes) -> str:
    payload = _b64(
        json.dumps(
            [grant.key, grant.tenant, grant.file_id, grant.max_bytes, grant.expires],
            separators=(",", ":"),
        ).encode()
    )
    mac = hmac.new(_upload_secret(secret), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def verify_upload(token: str, secret: bytes, now: float | None = None,
                  old: Sequence[bytes] = ()) -> UploadGrant:
    """The grant inside an upload token, signed with `secret` or one of the `old` secrets;
    ForbiddenError when forged, altered or expired."""
    payload, _, mac = token.partition(".")
    try:
        if not _signed_by(payload, mac, [_upload_secret(s) for s in (secret, *old)]):
            raise ValueError("bad signature")
        key, tenant, file_id, max_bytes, expires = json.loads(_unb64(payload))
        grant = UploadGrant(str(key), str(tenant), str(file_id), int(max_bytes), int(expires))
    except (ValueError, TypeError) as exc:
        raise ForbiddenError("This upload link is invalid.") from exc
    if grant.expires < (time.time() if now is None else now):
        raise ForbiddenError("This upload link has expired; create a new upload with "
                             "POST /api/uploads.")
    return grant
