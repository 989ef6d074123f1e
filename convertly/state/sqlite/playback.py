"""Playback counts on SQLite (embedded mode): `video_stream_playback` (a stream's counts)
and `video_stream_sessions` (each player session's state, forgotten a day after its last
event)."""

from __future__ import annotations

import json

from convertly.state.sqlite.database import Database
from convertly.streams.analytics import SESSION_TTL, PlaybackCounts, Session, step


class SqlitePlaybackStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, stream_id: str, session_id: str, event: str, position: float | None,
               at: float) -> None:
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT state FROM video_stream_sessions WHERE stream_id = ? AND session_id = ?",
                (stream_id, session_id)).fetchone()
            before = Session.from_dict(json.loads(row["state"])) if row else Session()
            after, first_play, watched = step(before, event, position, at)
            conn.execute(
                "INSERT INTO video_stream_sessions (stream_id, session_id, at, state)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (stream_id, session_id)"
                " DO UPDATE SET at = excluded.at, state = excluded.state",
                (stream_id, session_id, at, json.dumps(after.to_dict())))
            conn.execute(
                "INSERT INTO video_stream_playback (stream_id, events, plays, watch_seconds)"
                " VALUES (?, 1, ?, ?) ON CONFLICT (stream_id) DO UPDATE SET"
                " events = events + 1, plays = plays + excluded.plays,"
                " watch_seconds = watch_seconds + excluded.watch_seconds",
                (stream_id, int(first_play), watched))
            conn.execute("DELETE FROM video_stream_sessions WHERE at < ?", (at - SESSION_TTL,))

    def counts(self, stream_id: str) -> PlaybackCounts:
        row = self.db.read().execute(
            "SELECT events, plays, watch_seconds FROM video_stream_playback"
            " WHERE stream_id = ?", (stream_id,)).fetchone()
        if row is None:
            return PlaybackCounts()
        return PlaybackCounts(row["events"], row["plays"], row["watch_seconds"])

    def forget(self, stream_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM video_stream_playback WHERE stream_id = ?", (stream_id,))
            conn.execute("DELETE FROM video_stream_sessions WHERE stream_id = ?", (stream_id,))
