"""API keys: `cvly_<random>`, stored as SHA-256 hashes, looked up by prefix, compared in
constant time. Each key belongs to a tenant; everything a key creates belongs to its tenant."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, replace
from typing import Protocol

from convertly.errors import AuthenticationError, NotFoundError
from convertly.state.sqlite.database import Database

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


class KeyBackend(Protocol):
    """Where key records live (SQLite in embedded mode, Redis in distributed mode)."""

    def insert(self, record: ApiKey, key_hash: str) -> None: ...

    def by_prefix(self, prefix: str) -> tuple[ApiKey, str] | None:
        """The record and the stored hash for a public prefix, or None."""
        ...

    def all(self) -> list[ApiKey]: ...

    def update(self, record: ApiKey) -> None:
        """Store new `last_used_at` / `revoked_at` values for an existing key."""
        ...


class SqliteKeyBackend:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, record: ApiKey, key_hash: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys (prefix, hash, name, tenant, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (record.prefix, key_hash, record.name, record.tenant, record.created_at),
            )

    def by_prefix(self, prefix: str) -> tuple[ApiKey, str] | None:
        row = self.db.read().execute(
            "SELECT prefix, name, tenant, created_at, last_used_at, revoked_at, hash"
            " FROM api_keys WHERE prefix = ?",
            (prefix,),
        ).fetchone()
        return None if row is None else (ApiKey(*tuple(row)[:6]), row["hash"])

    def all(self) -> list[ApiKey]:
        rows = self.db.read().execute(
            "SELECT prefix, name, tenant, created_at, last_used_at, revoked_at"
            " FROM api_keys ORDER BY created_at"
        )
        return [ApiKey(*r) for r in rows.fetchall()]

    def update(self, record: ApiKey) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE api_keys SET last_used_at = ?, revoked_at = ? WHERE prefix = ?",
                (record.last_used_at, record.revoked_at, record.prefix),
            )


class KeyStore:
    """Creating, listing, revoking and checking keys, over either backend."""

    def __init__(self, backend: KeyBackend) -> None:
        self.backend = backend

    def create(self, name: str, tenant: str | None = None) -> tuple[str, ApiKey]:
        """Make a key; return (the key in clear — shown once, never stored — and its record)."""
        key = KEY_PREFIX + secrets.token_urlsafe(32).replace("-", "A").replace("_", "z")
        prefix = key[: len(KEY_PREFIX) + _LOOKUP_CHARS]
        record = ApiKey(prefix, name, tenant or new_tenant_id(), time.time(), None, None)
        self.backend.insert(record, _hash(key))
        return key, record

    def list(self) -> list[ApiKey]:
        return self.backend.all()

    def active_count(self) -> int:
        return sum(1 for k in self.backend.all() if k.revoked_at is None)

    def revoke(self, prefix: str) -> ApiKey:
        """Revoke the one key whose public prefix starts with `prefix`."""
        rows = [k for k in self.list() if k.prefix.startswith(prefix) and k.revoked_at is None]
        if len(rows) != 1:
            what = "no active key" if not rows else f"{len(rows)} active keys"
            raise NotFoundError(f"{what} with prefix {prefix!r}; see `convertly keys list`.")
        revoked = replace(rows[0], revoked_at=time.time())
        self.backend.update(revoked)
        return revoked

    def authenticate(self, key: str | None) -> ApiKey:
        """The key's record, or AuthenticationError. Timing does not depend on the hash."""
        if not key or not key.startswith(KEY_PREFIX) or len(key) > 200:
            raise AuthenticationError()
        found = self.backend.by_prefix(key[: len(KEY_PREFIX) + _LOOKUP_CHARS])
        expected = found[1] if found is not None else _hash("")
        if not hmac.compare_digest(_hash(key), expected) or found is None:
            raise AuthenticationError()
        record = found[0]
        if record.revoked_at is not None:
            raise AuthenticationError("This API key was revoked; create a new one.")
        now = time.time()
        if record.last_used_at is None or now - record.last_used_at > 60:
            record = replace(record, last_used_at=now)
            self.backend.update(record)
        return record
