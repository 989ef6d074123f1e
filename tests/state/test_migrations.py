"""The state database's numbered migrations: from an empty database, from one made by the
schema as it was before versioning (frozen below, rows kept), and refusing a newer one."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from convertly.state.sqlite import migrations
from convertly.state.sqlite.database import Database
from convertly.state.sqlite.files import SqliteFileStore
from convertly.state.sqlite.jobs import SqliteJobStore
from convertly.state.sqlite.keys import SqliteKeyStore
from convertly.state.sqlite.webhooks import SqliteWebhookStore

# The CREATE statements of convertly/state/sqlite/database.py and webhooks.py as they were
# before migrations (user_version 0), frozen: these databases exist on operators' disks.
PRE_VERSIONING = """
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
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT,
    base_url TEXT NOT NULL,
    created_at REAL NOT NULL,
    job_id TEXT
);
CREATE INDEX IF NOT EXISTS webhook_endpoints_tenant ON webhook_endpoints (tenant, created_at);
CREATE INDEX IF NOT EXISTS webhook_endpoints_job ON webhook_endpoints (job_id);
CREATE TABLE IF NOT EXISTS webhook_jobs (
    job_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    position INTEGER NOT NULL,
    status TEXT NOT NULL,
    next_attempt_at REAL,
    created_at REAL NOT NULL,
    finished_at REAL,
    meta TEXT NOT NULL,
    snapshot TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS webhook_deliveries_stream
    ON webhook_deliveries (stream, status, position);
CREATE INDEX IF NOT EXISTS webhook_deliveries_tenant
    ON webhook_deliveries (tenant, created_at DESC);
CREATE INDEX IF NOT EXISTS webhook_deliveries_job ON webhook_deliveries (tenant, job_id);
CREATE INDEX IF NOT EXISTS webhook_deliveries_finished ON webhook_deliveries (finished_at);
CREATE INDEX IF NOT EXISTS webhook_deliveries_endpoint
    ON webhook_deliveries (endpoint_id, status);
"""
# Columns that code added when opening a database from before they existed.
PRE_VERSIONING_ADDED = [
    ("files", "tags", "TEXT NOT NULL DEFAULT '[]'"),
    ("files", "description", "TEXT"),
    ("files", "duration", "REAL"),
    ("files", "page_count", "INTEGER"),
]


def _pre_versioning_db(path: Path, *, added: int = len(PRE_VERSIONING_ADDED)) -> None:
    """A database as the code before versioning left it, with the first `added` columns
    that it added on open, and a row in the main tables."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(PRE_VERSIONING)
    for table, column, definition in PRE_VERSIONING_ADDED[:added]:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    now = time.time()
    conn.execute(
        "INSERT INTO jobs (id, tenant, job_type, status, create_archive, archive_format,"
        " created_at, completed_at, specs) VALUES ('job1', 'tn_a', 'convert', 'completed', 0,"
        " 'zip', ?, ?, '[]')", (now, now))
    conn.execute("INSERT INTO api_keys (prefix, hash, name, tenant, created_at)"
                 " VALUES ('cv_abc', 'h', 'ops', 'tn_a', ?)", (now,))
    conn.execute("INSERT INTO files (id, tenant, key, filename, mime_type, size_bytes,"
                 " created_at) VALUES ('file_1', 'tn_a', 'tn_a/files/f', 'a.jpg', 'image/jpeg',"
                 " 3, ?)", (now,))
    conn.execute("INSERT INTO webhook_endpoints (id, tenant, url, secret, base_url, created_at)"
                 " VALUES ('we_1', 'tn_a', 'https://example.com/hook', 'whsec_x',"
                 " 'https://convert.example.com', ?)", (now,))
    conn.close()


def _columns(path: Path) -> dict[str, list[tuple[str, str, int, object]]]:
    """Every table's columns (name, type, not null, default), in order."""
    conn = sqlite3.connect(path)
    tables = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    out = {table: [(r[1], r[2], r[3], r[4]) for r in conn.execute(
        f"PRAGMA table_info({table})")] for table in tables}
    conn.close()
    return out


def _indexes(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    names = {row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    conn.close()
    return names


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    found: int = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.close()
    return found


def test_an_empty_database_gets_every_migration(tmp_path: Path) -> None:
    path = tmp_path / "convertly.db"
    Database(path).close()
    assert _user_version(path) == migrations.LATEST
    tables = _columns(path)
    assert {"jobs", "job_files", "idempotency", "api_keys", "tenant_limits", "files",
            "folders", "watchdog", "webhook_endpoints", "webhook_jobs",
            "webhook_deliveries"} <= set(tables)
    assert [c[0] for c in tables["files"]][-4:] == ["tags", "description", "duration",
                                                    "page_count"]
    # Opening it again changes nothing.
    Database(path).close()
    assert _columns(path) == tables


@pytest.mark.parametrize("added", [len(PRE_VERSIONING_ADDED), 2, 0])
def test_a_database_from_before_versioning_is_migrated_with_its_rows(
        tmp_path: Path, added: int) -> None:
    fresh = tmp_path / "fresh.db"
    Database(fresh).close()
    old = tmp_path / "old.db"
    _pre_versioning_db(old, added=added)
    assert _user_version(old) == 0

    db = Database(old)
    assert _user_version(old) == migrations.LATEST
    # The same tables, columns and indexes as a database created today.
    assert _columns(old) == _columns(fresh)
    assert _indexes(old) == _indexes(fresh)
    # The rows are there, and the stores read them.
    job = SqliteJobStore(db).get("job1")
    assert job is not None and job.tenant == "tn_a"
    record = SqliteFileStore(db).get("file_1", "tn_a")
    assert record is not None and record.filename == "a.jpg" and record.tags == ()
    assert [k.prefix for k in SqliteKeyStore(db).all()] == ["cv_abc"]
    endpoints = SqliteWebhookStore(db).endpoints("tn_a")
    assert [e.id for e in endpoints] == ["we_1"]
    db.close()


def test_a_newer_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "convertly.db"
    Database(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {migrations.LATEST + 1}")
    conn.close()
    before = _columns(path)
    with pytest.raises(migrations.SchemaTooNewError) as raised:
        Database(path)
    message = str(raised.value)
    assert str(path) in message and f"version {migrations.LATEST + 1}" in message
    assert "newer than this version of Convertly knows" in message
    assert _user_version(path) == migrations.LATEST + 1
    assert _columns(path) == before


def test_a_failing_migration_leaves_the_database_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.db"
    _pre_versioning_db(path, added=0)
    before = _columns(path)

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        conn.execute("THIS IS NOT SQL")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, broken])
    monkeypatch.setattr(migrations, "LATEST", migrations.LATEST + 1)
    with pytest.raises(sqlite3.OperationalError):
        Database(path)
    # Nothing of migrations 1 to LATEST stuck either: one transaction for all of them.
    assert _columns(path) == before
    assert _user_version(path) == 0
