"""API keys: `cvly_<random>`, stored as SHA-256 hashes, looked up by prefix, compared in
constant time. Each key belongs to a tenant; everything a key creates belongs to its tenant.

`ApiKeys` is the domain (making, revoking and checking keys) over a `KeyStore`
(`convertly.state`), which holds the records on either engine."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import replace

from convertly.errors import AuthenticationError, NotFoundError
from convertly.state.base import KeyStore
from convertly.state.records import ApiKey, TenantLimits

KEY_PREFIX = "cvly_"
_LOOKUP_CHARS = 8  # characters after `cvly_` kept in clear as the key's public prefix


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_tenant_id() -> str:
    return "tn_" + secrets.token_hex(8)


class ApiKeys:
    """Creating, listing, revoking and checking keys, over either engine's store."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store

    def create(self, name: str, tenant: str | None = None) -> tuple[str, ApiKey]:
        """Make a key; return (the key in clear — shown once, never stored — and its record)."""
        key = KEY_PREFIX + secrets.token_urlsafe(32).replace("-", "A").replace("_", "z")
        prefix = key[: len(KEY_PREFIX) + _LOOKUP_CHARS]
        record = ApiKey(prefix, name, tenant or new_tenant_id(), time.time(), None, None)
        self.store.insert(record, _hash(key))
        return key, record

    def list(self) -> list[ApiKey]:
        return self.store.all()

    def active_count(self) -> int:
        return sum(1 for k in self.store.all() if k.revoked_at is None)

    def revoke(self, prefix: str) -> ApiKey:
        """Revoke the one key whose public prefix starts with `prefix`."""
        rows = [k for k in self.list() if k.prefix.startswith(prefix) and k.revoked_at is None]
        if len(rows) != 1:
            what = "no active key" if not rows else f"{len(rows)} active keys"
            raise NotFoundError(f"{what} with prefix {prefix!r}; see `convertly keys list`.")
        revoked = replace(rows[0], revoked_at=time.time())
        self.store.update(revoked)
        return revoked

    def tenant_of(self, name: str) -> str:
        """The tenant `name` names: a tenant id that has a key, or the public prefix (or its
        unique beginning) of a key, revoked or not."""
        rows = self.list()
        if any(k.tenant == name for k in rows):
            return name
        tenants = {k.tenant for k in rows if k.prefix.startswith(name)} if name else set()
        if len(tenants) != 1:
            what = "no key or tenant" if not tenants else f"keys of {len(tenants)} tenants"
            raise NotFoundError(f"{what} matching {name!r}; see `convertly keys list`.")
        return tenants.pop()

    def limits(self, tenant: str) -> TenantLimits:
        """The tenant's own limits (`convertly.limits` applies them)."""
        return self.store.limits(tenant)

    def set_limits(self, tenant: str, limits: TenantLimits) -> None:
        self.store.set_limits(tenant, limits)

    def authenticate(self, key: str | None) -> ApiKey:
        """The key's record, or AuthenticationError. Timing does not depend on the hash."""
        if not key or not key.startswith(KEY_PREFIX) or len(key) > 200:
            raise AuthenticationError()
        found = self.store.by_prefix(key[: len(KEY_PREFIX) + _LOOKUP_CHARS])
        expected = found[1] if found is not None else _hash("")
        if not hmac.compare_digest(_hash(key), expected) or found is None:
            raise AuthenticationError()
        record = found[0]
        if record.revoked_at is not None:
            raise AuthenticationError("This API key was revoked; create a new one.")
        now = time.time()
        if record.last_used_at is None or now - record.last_used_at > 60:
            record = replace(record, last_used_at=now)
            self.store.update(record)
        return record
