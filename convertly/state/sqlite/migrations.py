"""The embedded state database's schema, as numbered migrations.

`PRAGMA user_version` holds the number of the last migration applied. Opening the database
(`Database.__init__`) applies the ones after it, all in one write transaction (SQLite's DDL is
transactional: a migration that fails leaves the database as it was), and refuses a database
whose version is newer than this code knows.

Add a change as a new migration at the end of MIGRATIONS; never edit a released one.
Migrations 1 to 3 are written to be re-run safely (CREATE ... IF NOT EXISTS, columns added when
missing): a database created before versioning has user_version 0 and any of their changes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer version of Convertly, whose schema this code does
    not know; running on it could lose data."""

    def __init__(self, path: Path, found: int, known: int) -> None:
        super().__init__(
            f"the state database {path} has schema version {found}, newer than this "
            f"version of Convertly knows ({known}); run the newer version, or restore a "
            "backup taken before the upgrade (`convertly backup`)."
        )
        self.found = found
        self.known = known


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]


def _add_column(conn: sqlite3.Connection, table: str, column: str, definition: str) -> None:
    present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    if column not in present:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")


_TABLES = """
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


def _create_tables(conn: sqlite3.Connection) -> None:
    """Jobs, idempotency keys, API keys, tenants' limits, stored files, folders, the watchdog
    and the webhook tables, as they first shipped."""
    for statement in _statements(_TABLES):
        conn.execute(statement)


def _file_tags(conn: sqlite3.Connection) -> None:
    """Stored files: tags and a description."""
    _add_column(conn, "files", "tags", "TEXT NOT NULL DEFAULT '[]'")
    _add_column(conn, "files", "description", "TEXT")


def _file_duration_pages(conn: sqlite3.Connection) -> None:
    """Stored files: the duration of audio and video, the page count of PDFs."""
    _add_column(conn, "files", "duration", "REAL")
    _add_column(conn, "files", "page_count", "INTEGER")


_VIDEO_STREAMS = """
CREATE TABLE video_streams (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    playback_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX video_streams_tenant_created ON video_streams (tenant, created_at DESC);
CREATE INDEX video_streams_status ON video_streams (status);
CREATE TABLE video_stream_renditions (
    stream_id TEXT NOT NULL REFERENCES video_streams (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    progress REAL NOT NULL DEFAULT 0,
    record TEXT NOT NULL,
    PRIMARY KEY (stream_id, idx)
)
"""


def _video_streams(conn: sqlite3.Connection) -> None:
    """Video streams (`convertly.streams`): the record, and each rendition's own row (done,
    progress) so that concurrent encoders never overwrite each other."""
    for statement in _statements(_VIDEO_STREAMS):
        conn.execute(statement)


_PLAYBACK = """
CREATE TABLE video_stream_playback (
    stream_id TEXT PRIMARY KEY,
    events INTEGER NOT NULL DEFAULT 0,
    plays INTEGER NOT NULL DEFAULT 0,
    watch_seconds REAL NOT NULL DEFAULT 0
);
CREATE TABLE video_stream_sessions (
    stream_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    at REAL NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (stream_id, session_id)
);
CREATE INDEX video_stream_sessions_at ON video_stream_sessions (at)
"""


def _video_stream_playback(conn: sqlite3.Connection) -> None:
    """Playback counts per video stream and the player sessions they are counted from
    (`convertly.streams.analytics`)."""
    for statement in _statements(_PLAYBACK):
        conn.execute(statement)


_TAXONOMY = """
CREATE TABLE taxonomy_terms (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    locale TEXT NOT NULL,
    slug TEXT NOT NULL,
    record TEXT NOT NULL,
    UNIQUE (tenant, locale, slug)
)
"""


def _taxonomy_terms(conn: sqlite3.Connection) -> None:
    """Library taxonomy terms (`convertly.taxonomy`): a slug is unique per tenant and
    locale."""
    for statement in _statements(_TAXONOMY):
        conn.execute(statement)


# Migration n is MIGRATIONS[n - 1].
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _create_tables,
    _file_tags,
    _file_duration_pages,
    _video_streams,
    _video_stream_playback,
    _taxonomy_terms,
]
LATEST = len(MIGRATIONS)


def version(conn: sqlite3.Connection) -> int:
    found: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return found


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Apply the migrations after the database's version, inside the caller's write
    transaction; return how many ran. SchemaTooNewError for a newer database."""
    found = version(conn)
    if found > LATEST:
        raise SchemaTooNewError(path, found, LATEST)
    for number in range(found + 1, LATEST + 1):
        MIGRATIONS[number - 1](conn)
    if found != LATEST:
        # PRAGMA takes no parameters; LATEST is an int of ours.
        conn.execute(f"PRAGMA user_version = {LATEST}")
    return LATEST - found
