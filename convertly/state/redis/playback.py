"""Playback counts on Redis (distributed mode).

    cv:plays:{stream_id}              hash: events, plays, watch (seconds)
    cv:plays:{stream_id}:s:{session}  a player session's state (JSON), expiring a day after
                                      its last event
"""

from __future__ import annotations

import json
from typing import Any

import redis

from convertly.state.redis.client import P, guard, transaction
from convertly.streams.analytics import SESSION_TTL, PlaybackCounts, Session, step


def _counts_key(stream_id: str) -> str:
    return f"{P}plays:{stream_id}"


class RedisPlaybackStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def record(self, stream_id: str, session_id: str, event: str, position: float | None,
               at: float) -> None:
        counts = _counts_key(stream_id)
        session_key = f"{counts}:s:{session_id}"

        def body(pipe: Any) -> None:
            raw = pipe.get(session_key)
            before = Session.from_dict(json.loads(raw)) if raw else Session()
            after, first_play, watched = step(before, event, position, at)
            pipe.multi()
            pipe.set(session_key, json.dumps(after.to_dict()), ex=SESSION_TTL)
            pipe.hincrby(counts, "events", 1)
            if first_play:
                pipe.hincrby(counts, "plays", 1)
            if watched:
                pipe.hincrbyfloat(counts, "watch", watched)
            pipe.execute()

        transaction(self.r, session_key, body)

    def counts(self, stream_id: str) -> PlaybackCounts:
        data = guard(lambda: self.r.hgetall(_counts_key(stream_id)))
        return PlaybackCounts(int(data.get("events", 0)), int(data.get("plays", 0)),
                              float(data.get("watch", 0.0)))

    def forget(self, stream_id: str) -> None:
        counts = _counts_key(stream_id)

        def delete() -> None:
            # Sessions expire by themselves within a day; a deleted stream's go now.
            self.r.delete(counts, *self.r.scan_iter(match=f"{counts}:s:*", count=1000))

        guard(delete)
