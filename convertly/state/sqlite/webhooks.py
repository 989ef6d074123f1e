"""Webhook state on SQLite (embedded mode), next to the jobs: endpoints, the delivery log and
the per-job event bookkeeping, in tables of their own (`sqlite/migrations.py` makes them)."""

from __future__ import annotations

import builtins
import collections
import json
from dataclasses import asdict
from typing import Any

from convertly.state.records import Delivery, DeliveryStatus, EmitState, Endpoint, Shares
from convertly.state.sqlite.database import Database

_PENDING = DeliveryStatus.PENDING.value
# Pending deliveries due now that no earlier pending delivery of their stream holds back,
# of tenants and to endpoints not at their share (JSON arrays of those that are), at most
# `per_tenant` of a tenant: each tenant's first, then each one's second, ... (turns).
_DUE = (
    "SELECT id, tenant, endpoint_id FROM ("
    " SELECT id, tenant, endpoint_id, next_attempt_at, ROW_NUMBER() OVER"
    " (PARTITION BY tenant ORDER BY next_attempt_at, position) AS turn"
    " FROM webhook_deliveries d WHERE status = ? AND next_attempt_at <= ?"
    " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.stream = d.stream"
    " AND e.status = ? AND e.position < d.position)"
    " AND tenant NOT IN (SELECT value FROM json_each(?))"
    " AND endpoint_id NOT IN (SELECT value FROM json_each(?)))"
    " WHERE turn <= ? ORDER BY turn, next_attempt_at"
)


def _within(rows: builtins.list[Any], limit: int, shares: Shares) -> builtins.list[str]:
    """The ids of `rows` (in turn order) that fit in `shares`, at most `limit`."""
    tenants = collections.Counter(shares.tenants)
    endpoints = collections.Counter(shares.endpoints)
    ids: builtins.list[str] = []
    for row in rows:
        if len(ids) >= limit:
            break
        tenant, endpoint = row["tenant"], row["endpoint_id"]
        if tenants[tenant] < shares.per_tenant and endpoints[endpoint] < shares.per_endpoint:
            tenants[tenant] += 1
            endpoints[endpoint] += 1
            ids.append(row["id"])
    return ids


def _endpoint(row: Any) -> Endpoint:
    events = row["events"]
    return Endpoint(id=row["id"], tenant=row["tenant"], url=row["url"], secret=row["secret"],
                    events=None if events is None else tuple(json.loads(events)),
                    base_url=row["base_url"], created_at=row["created_at"],
                    job_id=row["job_id"])


def _delivery(row: Any) -> Delivery:
    return Delivery.from_meta(json.loads(row["meta"]), row["snapshot"])


class SqliteWebhookStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- endpoints ---

    def add_endpoint(self, endpoint: Endpoint, ttl: int) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO webhook_endpoints (id, tenant, url, secret, events, base_url,"
                " created_at, job_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (endpoint.id, endpoint.tenant, endpoint.url, endpoint.secret,
                 None if endpoint.events is None else json.dumps(endpoint.events),
                 endpoint.base_url, endpoint.created_at, endpoint.job_id),
            )

    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        row = self.db.read().execute("SELECT * FROM webhook_endpoints WHERE id = ?",
                                     (endpoint_id,)).fetchone()
        return None if row is None else _endpoint(row)

    def endpoints(self, tenant: str) -> builtins.list[Endpoint]:
        rows = self.db.read().execute(
            "SELECT * FROM webhook_endpoints WHERE tenant = ? AND job_id IS NULL"
            " ORDER BY created_at, id", (tenant,)).fetchall()
        return [_endpoint(r) for r in rows]

    def remove_endpoint(self, endpoint_id: str, tenant: str) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute("DELETE FROM webhook_endpoints WHERE id = ? AND tenant = ?"
                               " AND job_id IS NULL", (endpoint_id, tenant))
            return cur.rowcount > 0

    def targets(self, tenant: str, job_id: str) -> builtins.list[Endpoint]:
        rows = self.db.read().execute(
            "SELECT * FROM webhook_endpoints WHERE (tenant = ? AND job_id IS NULL)"
            " OR job_id = ? ORDER BY created_at, id", (tenant, job_id)).fetchall()
        return [_endpoint(r) for r in rows if r["tenant"] == tenant]

    # --- events ---

    def _state(self, conn: Any, job_id: str) -> EmitState:
        row = conn.execute("SELECT state FROM webhook_jobs WHERE job_id = ?",
                           (job_id,)).fetchone()
        return EmitState() if row is None else EmitState(**json.loads(row["state"]))

    def emit_state(self, job_id: str) -> EmitState:
        return self._state(self.db.read(), job_id)

    def emit(self, job_id: str, kind: str, progress: int, now: float, interval: float,
             deliveries: builtins.list[Delivery], ttl: int) -> bool:
        with self.db.transaction() as conn:
            after = self._state(conn, job_id).after(kind, progress, now, interval)
            if after is None:
                return False
            conn.execute("INSERT OR REPLACE INTO webhook_jobs VALUES (?, ?, ?)",
                         (job_id, json.dumps(asdict(after)), now))
            for delivery in deliveries:
                self._enqueue(conn, delivery)
        return True

    def _enqueue(self, conn: Any, delivery: Delivery) -> None:
        position = conn.execute(
            "SELECT COALESCE(MAX(position), 0) + 1 FROM webhook_deliveries WHERE stream = ?",
            (delivery.stream,)).fetchone()[0]
        conn.execute(
            "INSERT OR REPLACE INTO webhook_deliveries (id, tenant, endpoint_id, job_id, stream,"
            " position, status, next_attempt_at, created_at, finished_at, meta, snapshot)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (delivery.id, delivery.tenant, delivery.endpoint_id, delivery.job_id,
             delivery.stream, position,
             delivery.status.value, delivery.next_attempt_at, delivery.created_at,
             delivery.finished_at, json.dumps(delivery.meta()), delivery.snapshot),
        )

    # --- sending ---

    def claim_due(self, now: float, limit: int, lease: float, shares: Shares
                  ) -> builtins.list[Delivery]:
        tenants, endpoints = shares.full()
        args = (_PENDING, now, _PENDING, json.dumps(tenants), json.dumps(endpoints),
                shares.per_tenant)
        if not self.db.read().execute(_DUE, args).fetchone():
            return []  # the usual case, without taking the write lock
        with self.db.transaction() as conn:
            ids = _within(conn.execute(_DUE, args).fetchall(), limit, shares)
            claimed = []
            for delivery_id in ids:
                conn.execute("UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ?",
                             (now + lease, delivery_id))
                row = conn.execute("SELECT meta, snapshot FROM webhook_deliveries WHERE id = ?",
                                   (delivery_id,)).fetchone()
                claimed.append(_delivery(row))
        return claimed

    def record_attempt(self, delivery: Delivery) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE webhook_deliveries SET status = ?, next_attempt_at = ?,"
                " finished_at = ?, meta = ? WHERE id = ?",
                (delivery.status.value, delivery.next_attempt_at, delivery.finished_at,
                 json.dumps(delivery.meta()), delivery.id),
            )

    # --- the log ---

    def delivery(self, delivery_id: str, tenant: str) -> Delivery | None:
        row = self.db.read().execute(
            "SELECT meta, snapshot FROM webhook_deliveries WHERE id = ? AND tenant = ?",
            (delivery_id, tenant)).fetchone()
        return None if row is None else _delivery(row)

    def deliveries(self, tenant: str, *, job_id: str | None, limit: int, offset: int
                   ) -> tuple[builtins.list[Delivery], int]:
        where, args = "tenant = ?", [tenant]
        if job_id is not None:
            where += " AND job_id = ?"
            args.append(job_id)
        conn = self.db.read()
        total = conn.execute(f"SELECT COUNT(*) FROM webhook_deliveries WHERE {where}",
                             args).fetchone()[0]
        rows = conn.execute(
            f"SELECT meta, snapshot FROM webhook_deliveries WHERE {where}"
            " ORDER BY created_at DESC, position DESC LIMIT ? OFFSET ?",
            [*args, limit, offset]).fetchall()
        return [_delivery(r) for r in rows], int(total)

    def retry(self, delivery_id: str, tenant: str, now: float) -> Delivery | None:
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT meta, snapshot FROM webhook_deliveries WHERE id = ? AND tenant = ?",
                (delivery_id, tenant)).fetchone()
            if row is None:
                return None
            delivery = _delivery(row)
            if delivery.status is DeliveryStatus.PENDING:
                return None
            again = delivery.retried(now)
            self._enqueue(conn, again)
        return again

    def purge(self, before: float) -> int:
        with self.db.transaction() as conn:
            cur = conn.execute("DELETE FROM webhook_deliveries WHERE finished_at < ?",
                               (before,))
            conn.execute("DELETE FROM webhook_jobs WHERE updated_at < ?", (before,))
            conn.execute(
                "DELETE FROM webhook_endpoints WHERE job_id IS NOT NULL AND created_at < ?"
                " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d"
                " WHERE d.endpoint_id = webhook_endpoints.id AND d.status = ?)",
                (before, _PENDING))
            return int(cur.rowcount)
