"""Video streams on SQLite (embedded mode): the `video_streams` table (the record as JSON,
its renditions left out) and `video_stream_renditions` (one row per rendition: done,
progress, the rendition as JSON)."""

from __future__ import annotations

import builtins
import json
import sqlite3
from dataclasses import replace
from typing import Any

from convertly.state.sqlite.database import Database
from convertly.streams.model import Rendition, StreamStatus, VideoStream

_UNFINISHED = (str(StreamStatus.QUEUED), str(StreamStatus.PROCESSING))


def _record_json(stream: VideoStream) -> str:
    data = stream.to_dict()
    data["renditions"] = []
    return json.dumps(data)


def _write_renditions(conn: sqlite3.Connection, stream: VideoStream) -> None:
    conn.execute("DELETE FROM video_stream_renditions WHERE stream_id = ?", (stream.id,))
    conn.executemany(
        "INSERT INTO video_stream_renditions (stream_id, idx, done, progress, record)"
        " VALUES (?, ?, ?, ?, ?)",
        [(stream.id, r.index, int(r.done), r.progress, json.dumps(r.to_dict()))
         for r in stream.renditions])


class SqliteStreamStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _load(self, conn: sqlite3.Connection, row: sqlite3.Row) -> VideoStream:
        stream = VideoStream.from_dict(json.loads(row["record"]))
        rows = conn.execute(
            "SELECT done, progress, record FROM video_stream_renditions"
            " WHERE stream_id = ? ORDER BY idx", (stream.id,)).fetchall()
        renditions = tuple(
            replace(Rendition.from_dict(json.loads(r["record"])), done=bool(r["done"]),
                    progress=r["progress"]) for r in rows)
        return replace(stream, renditions=renditions)

    def add(self, stream: VideoStream) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO video_streams (id, tenant, playback_id, status, created_at,"
                " record) VALUES (?, ?, ?, ?, ?, ?)",
                (stream.id, stream.tenant, stream.playback_id, str(stream.status),
                 stream.created_at, _record_json(stream)))
            _write_renditions(conn, stream)

    def _get(self, conn: sqlite3.Connection, stream_id: str,
             tenant: str | None) -> VideoStream | None:
        row = conn.execute("SELECT tenant, record FROM video_streams WHERE id = ?",
                           (stream_id,)).fetchone()
        if row is None or (tenant is not None and row["tenant"] != tenant):
            return None
        return self._load(conn, row)

    def get(self, stream_id: str, tenant: str | None = None) -> VideoStream | None:
        # One read transaction: the record and its renditions from the same snapshot.
        conn = self.db.read()
        conn.execute("BEGIN")
        try:
            return self._get(conn, stream_id, tenant)
        finally:
            conn.execute("COMMIT")

    def by_playback_id(self, playback_id: str) -> VideoStream | None:
        conn = self.db.read()
        row = conn.execute("SELECT record FROM video_streams WHERE playback_id = ?",
                           (playback_id,)).fetchone()
        return None if row is None else self._load(conn, row)

    def list(self, tenant: str, *, status: StreamStatus | None, limit: int,
             offset: int) -> tuple[builtins.list[VideoStream], int]:
        where, args = "tenant = ?", [tenant]
        if status is not None:
            where += " AND status = ?"
            args.append(str(status))
        conn = self.db.read()
        total = conn.execute(f"SELECT COUNT(*) FROM video_streams WHERE {where}",
                             args).fetchone()[0]
        rows = conn.execute(
            f"SELECT record FROM video_streams WHERE {where}"
            " ORDER BY created_at DESC, id LIMIT ? OFFSET ?", [*args, limit, offset]
        ).fetchall()
        return [self._load(conn, r) for r in rows], int(total)

    def update(self, stream_id: str, tenant: str | None = None,
               **changes: Any) -> VideoStream | None:
        with self.db.transaction() as conn:
            current = self._get(conn, stream_id, tenant)
            if current is None:
                return None
            new = replace(current, **changes)
            conn.execute("UPDATE video_streams SET status = ?, record = ? WHERE id = ?",
                         (str(new.status), _record_json(new), stream_id))
            if "renditions" in changes:
                _write_renditions(conn, new)
        return new

    def set_progress(self, stream_id: str, index: int, fraction: float) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE video_stream_renditions SET progress = ?"
                " WHERE stream_id = ? AND idx = ? AND done = 0",
                (max(0.0, min(1.0, fraction)), stream_id, index))

    def record_rendition(self, stream_id: str, rendition: Rendition) -> bool:
        done = replace(rendition, done=True, progress=1.0)
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE video_stream_renditions SET done = 1, progress = 1, record = ?"
                " WHERE stream_id = ? AND idx = ? AND done = 0",
                (json.dumps(done.to_dict()), stream_id, rendition.index))
            if cursor.rowcount != 1:
                return False
            left = conn.execute(
                "SELECT COUNT(*) FROM video_stream_renditions"
                " WHERE stream_id = ? AND done = 0", (stream_id,)).fetchone()[0]
        return int(left) == 0

    def unfinished(self) -> builtins.list[VideoStream]:
        conn = self.db.read()
        rows = conn.execute(
            "SELECT record FROM video_streams WHERE status IN (?, ?) ORDER BY created_at",
            _UNFINISHED).fetchall()
        return [self._load(conn, r) for r in rows]

    def remove(self, stream_id: str, tenant: str) -> bool:
        with self.db.transaction() as conn:
            cursor = conn.execute("DELETE FROM video_streams WHERE id = ? AND tenant = ?",
                                  (stream_id, tenant))
        return cursor.rowcount == 1
