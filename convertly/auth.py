"""API keys: `cvly_<random>`, stored as SHA-256 hashes, looked up by prefix, compared in
constant time. Each key belongs to a tenant; everything a key creates belongs to its tenant."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from convertly.db import Database
from convertly.errors import AuthenticationError, NotFoundError

KEY_PREFIX = "cvly_"
_LOOKUP_CHARS = 8  # characters after `cvly_` kept in clear as the key's public prefix


@dataclass(frozen=True)
class ApiKey:
    prefix: str
    name: str
    tenant: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_tenant_id() -> str:
    return "tn_" + secrets.token_hex(8)


class KeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, name: str, tenant: str | None = None) -> tuple[str, ApiKey]:
        """Make a key; return (the key in clear — shown once, never stored — and its record)."""
        key = KEY_PREFIX + secrets.token_urlsafe(32).replace("-", "A").replace("_", "z")
        prefix = key[: len(KEY_PREFIX) + _LOOKUP_CHARS]
        record = ApiKey(prefix, name, tenant or new_tenant_id(), time.time(), None, None)
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys (prefix, hash, name, tenant, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (prefix, _hash(key), name, record.tenant, record.created_at),
            )
        return key, record

    def list(self) -> list[ApiKey]:
        rows = self.db.read().execute(
            "SELECT prefix, name, tenant, created_at, last_used_at, revoked_at"
            " FROM api_keys ORDER BY created_at"
        )
        return [ApiKey(*r) for r in rows.fetchall()]

    def active_count(self) -> int:
        row = self.db.read().execute("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL")
        return int(row.fetchone()[0])

    def revoke(self, prefix: str) -> ApiKey:
        """Revoke the one key whose public prefix starts with `prefix`."""
        rows = [k for k in self.list() if k.prefix.startswith(prefix) and k.revoked_at is None]
        if len(rows) != 1:
            what = "no active key" if not rows else f"{len(rows)} active keys"
            raise NotFoundError(f"{what} with prefix {prefix!r}; see `convertly keys list`.")
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE prefix = ?", (time.time(), rows[0].prefix)
            )
        return rows[0]

    def authenticate(self, key: str | None) -> ApiKey:
        """The key's record, or AuthenticationError. Timing does not depend on the hash."""
        if not key or not key.startswith(KEY_PREFIX) or len(key) > 200:
            raise AuthenticationError()
        prefix = key[: len(KEY_PREFIX) + _LOOKUP_CHARS]
        row = self.db.read().execute(
            "SELECT prefix, hash, name, tenant, created_at, last_used_at, revoked_at"
            " FROM api_keys WHERE prefix = ?",
            (prefix,),
        ).fetchone()
        expected = row["hash"] if row is not None else _hash("")
        if not hmac.compare_digest(_hash(key), expected) or row is None:
            raise AuthenticationError()
        if row["revoked_at"] is not None:
            raise AuthenticationError("This API key was revoked; create a new one.")
        now = time.time()
        if row["last_used_at"] is None or now - row["last_used_at"] > 60:
            with self.db.transaction() as conn:
                conn.execute("UPDATE api_keys SET last_used_at = ? WHERE prefix = ?", (now, prefix))
        return ApiKey(prefix, row["name"], row["tenant"], row["created_at"], now, None)
