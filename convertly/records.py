"""Records of stored files (what `storedFileId` points at), per tenant."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Protocol

from convertly.db import Database


@dataclass(frozen=True)
class StoredFile:
    id: str
    tenant: str
    key: str
    filename: str
    mime_type: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    job_id: str | None = None
    temporary: bool = False
    created_at: float = 0.0
    expires_at: float | None = None


def new_file_id() -> str:
    return "file_" + secrets.token_hex(12)


class FileIndexLike(Protocol):
    """Stored-file records (SQLite in embedded mode, Redis in distributed mode)."""

    def add(self, record: StoredFile) -> StoredFile: ...

    def get(self, file_id: str, tenant: str) -> StoredFile | None:
        """The tenant's live record, or None (missing, another tenant's, or expired)."""
        ...

    def expired(self, now: float) -> list[StoredFile]: ...

    def remove(self, file_id: str) -> None: ...

    def remove_for_job(self, job_id: str) -> None:
        """Forget every record of the job's outputs."""
        ...


class FileIndex:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, record: StoredFile) -> StoredFile:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO files (id, tenant, key, filename, mime_type, size_bytes, width,"
                " height, job_id, temporary, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id, record.tenant, record.key, record.filename, record.mime_type,
                    record.size_bytes, record.width, record.height, record.job_id,
                    int(record.temporary), record.created_at or time.time(), record.expires_at,
                ),
            )
        return record

    def get(self, file_id: str, tenant: str) -> StoredFile | None:
        row = self.db.read().execute(
            "SELECT id, tenant, key, filename, mime_type, size_bytes, width, height, job_id,"
            " temporary, created_at, expires_at FROM files WHERE id = ? AND tenant = ?",
            (file_id, tenant),
        ).fetchone()
        if row is None:
            return None
        record = StoredFile(*row)
        if record.expires_at is not None and record.expires_at < time.time():
            return None
        return record

    def expired(self, now: float) -> list[StoredFile]:
        rows = self.db.read().execute(
            "SELECT id, tenant, key, filename, mime_type, size_bytes, width, height, job_id,"
            " temporary, created_at, expires_at FROM files"
            " WHERE expires_at IS NOT NULL AND expires_at < ?",
            (now,),
        )
        return [StoredFile(*r) for r in rows.fetchall()]

    def remove(self, file_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM files WHERE id = ?", (file_id,))

    def remove_for_job(self, job_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM files WHERE job_id = ?", (job_id,))
