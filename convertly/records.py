"""Records of stored files (what `storedFileId` points at and what `/api/files` lists), per
tenant. A record is *listed* unless it is temporary: a short-lived sync output, a zip of
files, or a direct upload that is not complete yet."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from dataclasses import dataclass, fields
from typing import Any, Protocol

from convertly.state.sqlite.database import Database


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
    folder_id: str | None = None
    tags: tuple[str, ...] = ()
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredFile:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["tags"] = tuple(values.get("tags") or ())
        values["temporary"] = bool(values.get("temporary", False))
        return cls(**values)


def new_file_id() -> str:
    return "file_" + secrets.token_hex(12)


ORIENTATIONS = ("vertical", "horizontal", "square")


@dataclass(frozen=True)
class FileQuery:
    """Which of a tenant's listed files a search returns. Empty fields do not filter.

    `folder_id` with `root_only=False`: files in that folder; `root_only=True`: files in no
    folder. `text`: a case-insensitive substring of the filename. `tags`: files carrying any
    of them (all of them with `all_tags`), compared case-insensitively. `orientation`:
    vertical, horizontal or square, from the recorded width and height."""

    folder_id: str | None = None
    root_only: bool = False
    text: str | None = None
    mime_prefix: str | None = None
    tags: tuple[str, ...] = ()
    all_tags: bool = False
    orientation: str | None = None

    @property
    def scans(self) -> bool:
        """True when the query filters on more than the folder (a search must read records)."""
        return bool(self.text or self.mime_prefix or self.tags or self.orientation)

    def matches(self, record: StoredFile) -> bool:
        if record.temporary:
            return False
        if self.root_only and record.folder_id is not None:
            return False
        if self.folder_id is not None and record.folder_id != self.folder_id:
            return False
        if self.text and self.text.casefold() not in record.filename.casefold():
            return False
        if self.mime_prefix and not record.mime_type.lower().startswith(
                self.mime_prefix.lower()):
            return False
        if self.tags:
            have = {t.casefold() for t in record.tags}
            wanted = [t.casefold() for t in self.tags]
            hits = [t in have for t in wanted]
            if not (all(hits) if self.all_tags else any(hits)):
                return False
        if self.orientation:
            if record.width is None or record.height is None:
                return False
            shape = ("square" if record.width == record.height
                     else "vertical" if record.height > record.width else "horizontal")
            if shape != self.orientation:
                return False
        return True


class FileIndexLike(Protocol):
    """Stored-file records (SQLite in embedded mode, Redis in distributed mode)."""

    def add(self, record: StoredFile) -> StoredFile: ...

    def get(self, file_id: str, tenant: str) -> StoredFile | None:
        """The tenant's live record, or None (missing, another tenant's, or expired).
        Temporary records are returned too; callers that list files skip them."""
        ...

    def search(self, tenant: str, query: FileQuery, *, limit: int,
               offset: int) -> tuple[list[StoredFile], int]:
        """The tenant's listed (non-temporary) records matching `query`, newest first
        (ties by id, descending), `limit` of them from `offset`, and how many match."""
        ...

    def update(self, file_id: str, tenant: str, **changes: Any) -> StoredFile | None:
        """Set the given fields of the tenant's record at once and return the new record
        (expired or not); None when there is no such record. `id`, `tenant`, `key` and
        `job_id` never change."""
        ...

    def expired(self, now: float) -> list[StoredFile]: ...

    def remove(self, file_id: str) -> None: ...

    def remove_for_job(self, job_id: str) -> None:
        """Forget every record of the job's outputs."""
        ...


_COLUMNS = ("id", "tenant", "key", "filename", "mime_type", "size_bytes", "width", "height",
            "job_id", "temporary", "created_at", "expires_at", "folder_id", "tags",
            "description")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM files"
_UPDATABLE = frozenset(_COLUMNS) - {"id", "tenant", "key", "job_id"}


def _row(row: sqlite3.Row) -> StoredFile:
    data = dict(zip(_COLUMNS, tuple(row), strict=True))
    data["tags"] = json.loads(data["tags"] or "[]")
    return StoredFile.from_dict(data)


def _column_value(name: str, value: Any) -> Any:
    if name == "tags":
        return json.dumps(list(value))
    if name == "temporary":
        return int(value)
    return value


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


class FileIndex:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, record: StoredFile) -> StoredFile:
        if not record.created_at:
            record = StoredFile.from_dict({**record.to_dict(), "created_at": time.time()})
        with self.db.transaction() as conn:
            conn.execute(
                f"INSERT INTO files ({', '.join(_COLUMNS)})"
                f" VALUES ({', '.join('?' * len(_COLUMNS))})",
                tuple(_column_value(c, getattr(record, c)) for c in _COLUMNS),
            )
        return record

    def get(self, file_id: str, tenant: str) -> StoredFile | None:
        row = self.db.read().execute(
            f"{_SELECT} WHERE id = ? AND tenant = ?", (file_id, tenant)
        ).fetchone()
        if row is None:
            return None
        record = _row(row)
        if record.expires_at is not None and record.expires_at < time.time():
            return None
        return record

    def search(self, tenant: str, query: FileQuery, *, limit: int,
               offset: int) -> tuple[list[StoredFile], int]:
        where = ["tenant = ?", "temporary = 0"]
        args: list[Any] = [tenant]
        if query.root_only:
            where.append("folder_id IS NULL")
        elif query.folder_id is not None:
            where.append("folder_id = ?")
            args.append(query.folder_id)
        if query.text:
            where.append("instr(casefold(filename), ?) > 0")
            args.append(query.text.casefold())
        if query.mime_prefix:
            where.append("lower(mime_type) LIKE ? ESCAPE '\\'")
            args.append(_like_prefix(query.mime_prefix.lower()))
        if query.tags:
            has_tag = ("EXISTS (SELECT 1 FROM json_each(files.tags)"
                       " WHERE casefold(json_each.value) = ?)")
            joined = " AND ".join([has_tag] * len(query.tags)) if query.all_tags \
                else " OR ".join([has_tag] * len(query.tags))
            where.append(f"({joined})")
            args.extend(t.casefold() for t in query.tags)
        if query.orientation == "vertical":
            where.append("height > width")
        elif query.orientation == "horizontal":
            where.append("width > height")
        elif query.orientation == "square":
            where.append("width = height")
        clause = " AND ".join(where)
        conn = self.db.read()
        total = conn.execute(f"SELECT count(*) FROM files WHERE {clause}", args).fetchone()[0]
        rows = conn.execute(
            f"{_SELECT} WHERE {clause} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
        return [_row(r) for r in rows], int(total)

    def update(self, file_id: str, tenant: str, **changes: Any) -> StoredFile | None:
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))}")
        if changes:
            names = sorted(changes)
            with self.db.transaction() as conn:
                conn.execute(
                    f"UPDATE files SET {', '.join(f'{n} = ?' for n in names)}"
                    " WHERE id = ? AND tenant = ?",
                    [*(_column_value(n, changes[n]) for n in names), file_id, tenant],
                )
        row = self.db.read().execute(
            f"{_SELECT} WHERE id = ? AND tenant = ?", (file_id, tenant)
        ).fetchone()
        return None if row is None else _row(row)

    def expired(self, now: float) -> list[StoredFile]:
        rows = self.db.read().execute(
            f"{_SELECT} WHERE expires_at IS NOT NULL AND expires_at < ?", (now,)
        )
        return [_row(r) for r in rows.fetchall()]

    def remove(self, file_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM files WHERE id = ?", (file_id,))

    def remove_for_job(self, job_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM files WHERE job_id = ?", (job_id,))
