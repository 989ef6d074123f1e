"""The embedded state database (SQLite, WAL): jobs, idempotency keys, API keys, tenants'
own limits, stored-file records and folders (the webhook store adds its own tables,
`sqlite/webhooks.py`).

Every process (API server, pool workers, CLI) opens its own connection; WAL lets readers and
one writer work at once, and `BEGIN IMMEDIATE` serialises the few read-modify-write steps.
Every write goes through `transaction`, where SQLite's SQLITE_FULL ("database or disk is
full") becomes StorageFullError.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from convertly import diskspace

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    job_type TEXT NOT NULL,
    status TEXT NOT NULL,
    create_archive INTEGER NOT NULL,
    archive_format TEXT NOT NULL,
    archive_key TEXT,
    archive_size INTEGER,
    error_message TEXT,
    cancelled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    completed_at REAL,
    specs TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS jobs_tenant_created ON jobs (tenant, created_at DESC);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE INDEX IF NOT EXISTS jobs_tenant_status ON jobs (tenant, status);
CREATE TABLE IF NOT EXISTS job_files (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    status TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (job_id, idx)
);
CREATE INDEX IF NOT EXISTS job_files_status ON job_files (job_id, status);
CREATE TABLE IF NOT EXISTS idempotency (
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    job_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE TABLE IF NOT EXISTS api_keys (
    prefix TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    name TEXT NOT NULL,
    tenant TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_used_at REAL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS tenant_limits (
    tenant TEXT PRIMARY KEY,
    limits TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    filename TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    folder_id TEXT,
    width INTEGER,
    height INTEGER,
    job_id TEXT,
    temporary INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS files_tenant_created ON files (tenant, created_at DESC);
CREATE INDEX IF NOT EXISTS files_expires ON files (expires_at);
CREATE INDEX IF NOT EXISTS files_tenant_folder ON files (tenant, folder_id, created_at DESC);
CREATE TABLE IF NOT EXISTS folders (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    color TEXT NOT NULL,
    parent_id TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS folders_tenant ON folders (tenant);
CREATE TABLE IF NOT EXISTS watchdog (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    owner TEXT,
    expires_at REAL NOT NULL DEFAULT 0,
    stuck INTEGER NOT NULL DEFAULT 0,
    requeued INTEGER NOT NULL DEFAULT 0
);
"""

# Columns added after a table first shipped: (table, column, definition). A database created
# by an older version gets them on open.
ADDED_COLUMNS = [
    ("files", "tags", "TEXT NOT NULL DEFAULT '[]'"),
    ("files", "description", "TEXT"),
    ("files", "duration", "REAL"),
    ("files", "page_count", "INTEGER"),
]


def _casefold(value: str | None) -> str | None:
    return value.casefold() if isinstance(value, str) else value


class Database:
    """A thread-local SQLite connection per process, schema created on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with diskspace.room(f"the job database {self.path}"):
            self._conn().executescript(SCHEMA)  # runs in its own transaction
        self._add_columns()

    def _add_columns(self) -> None:
        with self.transaction() as conn:
            for table, column, definition in ADDED_COLUMNS:
                present = {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            # Unicode-aware case folding for searches (SQLite's lower() folds ASCII only).
            conn.create_function("casefold", 1, _casefold, deterministic=True)
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken at once (BEGIN IMMEDIATE): no lost updates. A full disk
        raises StorageFullError, with nothing written."""
        conn = self._conn()
        with diskspace.room(f"the job database {self.path}"):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # SQLite rolls back by itself after some errors (SQLITE_FULL among them).
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def read(self) -> sqlite3.Connection:
        """The connection, for single reads (each statement is its own snapshot)."""
        return self._conn()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
