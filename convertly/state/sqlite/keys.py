"""API keys on SQLite (embedded mode): the `api_keys` table, and tenants' own limits in
`tenant_limits` (one JSON object per tenant)."""

from __future__ import annotations

import json

from convertly.state.records import ApiKey, TenantLimits
from convertly.state.sqlite.database import Database


class SqliteKeyStore:
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

    def limits(self, tenant: str) -> TenantLimits:
        row = self.db.read().execute(
            "SELECT limits FROM tenant_limits WHERE tenant = ?", (tenant,)).fetchone()
        return TenantLimits() if row is None else TenantLimits.from_dict(json.loads(row[0]))

    def set_limits(self, tenant: str, limits: TenantLimits) -> None:
        with self.db.transaction() as conn:
            if limits == TenantLimits():
                conn.execute("DELETE FROM tenant_limits WHERE tenant = ?", (tenant,))
            else:
                conn.execute("INSERT OR REPLACE INTO tenant_limits VALUES (?, ?)",
                             (tenant, json.dumps(limits.to_dict())))
