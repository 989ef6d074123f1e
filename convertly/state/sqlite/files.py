"""Stored-file records on SQLite (embedded mode): the `files` table."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

from convertly.state.records import FileQuery, StoredFile
from convertly.state.sqlite.database import Database

_COLUMNS = ("id", "tenant", "key", "filename", "mime_type", "size_bytes", "width", "height",
            "job_id", "temporary", "created_at", "expires_at", "folder_id", "tags",
            "description", "duration", "page_count")
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


def _where(tenant: str, query: FileQuery) -> tuple[str, list[Any]]:
    """The WHERE clause (and its arguments) of the tenant's listed files `query` matches."""
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
        groups = []
        for forms in query.tags:
            marks = ", ".join("?" * len(forms))
            groups.append("EXISTS (SELECT 1 FROM json_each(files.tags)"
                          f" WHERE casefold(json_each.value) IN ({marks}))")
            args.extend(t.casefold() for t in forms)
        where.append("(" + (" AND " if query.all_tags else " OR ").join(groups) + ")")
    if query.orientation:
        where.append(f"{_ORIENTATION} = ?")
        args.append(query.orientation)
    return " AND ".join(where), args


# What `records.orientation` says, in SQL (NULL without dimensions).
_ORIENTATION = ("(CASE WHEN width IS NULL OR height IS NULL THEN NULL"
                " WHEN width = height THEN 'square'"
                " WHEN height > width THEN 'vertical' ELSE 'horizontal' END)")

# Each search facet as one grouped count, the same as `records.count_facets`.
_FACETS = {
    "tags": "SELECT min(tag), count(*) FROM (SELECT casefold(t.value) AS folded,"
            " min(t.value) AS tag FROM files, json_each(files.tags) AS t WHERE {where}"
            " GROUP BY files.id, folded) GROUP BY folded ORDER BY count(*) DESC, min(tag)"
            " LIMIT ?",
    "orientation": f"SELECT {_ORIENTATION} AS shape, count(*) FROM files WHERE {{where}}"
                   " AND width IS NOT NULL AND height IS NOT NULL"
                   " GROUP BY shape ORDER BY count(*) DESC, shape LIMIT ?",
    "mimeType": "SELECT lower(mime_type) AS mime, count(*) FROM files WHERE {where}"
                " GROUP BY mime ORDER BY count(*) DESC, mime LIMIT ?",
}


class SqliteFileStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, record: StoredFile) -> StoredFile:
        return self.add_many((record,))[0]

    def add_many(self, records: Sequence[StoredFile]) -> list[StoredFile]:
        now = time.time()
        stamped = [record if record.created_at else
                   StoredFile.from_dict({**record.to_dict(), "created_at": now})
                   for record in records]
        with self.db.transaction() as conn:
            conn.executemany(
                f"INSERT INTO files ({', '.join(_COLUMNS)})"
                f" VALUES ({', '.join('?' * len(_COLUMNS))})",
                [tuple(_column_value(c, getattr(record, c)) for c in _COLUMNS)
                 for record in stamped],
            )
        return stamped

    def stored_bytes(self, tenant: str) -> int:
        row = self.db.read().execute(
            "SELECT COALESCE(SUM(size_bytes), 0) FROM files WHERE tenant = ? AND temporary = 0",
            (tenant,)).fetchone()
        return int(row[0])

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
        clause, args = _where(tenant, query)
        conn = self.db.read()
        total = conn.execute(f"SELECT count(*) FROM files WHERE {clause}", args).fetchone()[0]
        rows = conn.execute(
            f"{_SELECT} WHERE {clause} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
        return [_row(r) for r in rows], int(total)

    def facets(self, tenant: str, query: FileQuery, which: Iterable[str],
               limit: int) -> dict[str, list[tuple[str, int]]]:
        clause, args = _where(tenant, query)
        conn = self.db.read()
        found: dict[str, list[tuple[str, int]]] = {}
        for name in which:
            rows = conn.execute(_FACETS[name].format(where=clause), [*args, limit]).fetchall()
            found[name] = [(str(value), int(count)) for value, count in rows]
        return found

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
