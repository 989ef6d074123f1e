"""The embedded state database (SQLite, WAL): jobs, idempotency keys, API keys, tenants'
own limits, stored-file records, folders and the webhook tables. The schema is built and
changed by the numbered migrations of `sqlite/migrations.py` only.

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
from convertly.state.sqlite import migrations

DATABASE_NAME = "convertly.db"  # in CONVERTLY_DATA_DIR


def _casefold(value: str | None) -> str | None:
    return value.casefold() if isinstance(value, str) else value


class Database:
    """A thread-local SQLite connection per process; opening it brings the schema up to date
    (`migrations.migrate`), or raises SchemaTooNewError for a database of a newer version."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        # Most opens find the schema current and take no write lock; the version is read
        # again inside the transaction, where another process may have migrated meanwhile.
        if migrations.version(self._conn()) != migrations.LATEST:
            with self.transaction() as conn:
                migrations.migrate(conn, self.path)

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
