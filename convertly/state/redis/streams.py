"""Video streams on Redis (distributed mode).

    cv:stream:{id}           hash: `record` (the record as JSON, its renditions left out),
                             `tenant`, `n` (how many renditions), and per rendition i:
                             `r:i` (JSON), `d:i` (1 once encoded), `p:i` (progress)
    cv:streams:{tenant}      sorted set of the tenant's stream ids by creation time
    cv:streams:unfinished    set of the ids of streams queued or processing
    cv:playback:{playbackId} the id of the stream played under it
"""

from __future__ import annotations

import builtins
import json
from dataclasses import replace
from typing import Any

import redis

from convertly.state.redis.client import P, guard, transaction
from convertly.streams.model import Rendition, StreamStatus, VideoStream

_UNFINISHED = f"{P}streams:unfinished"

# KEYS[1] the stream hash; ARGV: rendition index, rendition JSON. Marks it done once and
# answers 1 when every rendition is done (the caller queues the packaging step).
_RECORD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'd:' .. ARGV[1]) == '1' then return 0 end
redis.call('HSET', KEYS[1], 'd:' .. ARGV[1], '1', 'r:' .. ARGV[1], ARGV[2], 'p:' .. ARGV[1], '1')
local n = tonumber(redis.call('HGET', KEYS[1], 'n'))
for i = 0, n - 1 do
  if redis.call('HGET', KEYS[1], 'd:' .. i) ~= '1' then return 0 end
end
return 1
"""

# KEYS[1] the stream hash; ARGV: index, fraction. Only while the rendition is not done.
_PROGRESS = """
if redis.call('HEXISTS', KEYS[1], 'r:' .. ARGV[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'd:' .. ARGV[1]) == '1' then return 0 end
redis.call('HSET', KEYS[1], 'p:' .. ARGV[1], ARGV[2])
return 1
"""


def _key(stream_id: str) -> str:
    return f"{P}stream:{stream_id}"


def _tenant_key(tenant: str) -> str:
    return f"{P}streams:{tenant}"


def _playback_key(playback_id: str) -> str:
    return f"{P}playback:{playback_id}"


def _fields(stream: VideoStream, *, renditions: bool) -> dict[str, Any]:
    data = stream.to_dict()
    data["renditions"] = []
    out: dict[str, Any] = {"record": json.dumps(data), "tenant": stream.tenant}
    if renditions:
        out["n"] = len(stream.renditions)
        for r in stream.renditions:
            out[f"r:{r.index}"] = json.dumps(r.to_dict())
            out[f"d:{r.index}"] = "1" if r.done else "0"
            out[f"p:{r.index}"] = repr(r.progress)
    return out


def _load(raw: dict[str, str]) -> VideoStream:
    stream = VideoStream.from_dict(json.loads(raw["record"]))
    renditions = []
    for i in range(int(raw.get("n") or 0)):
        if f"r:{i}" in raw:
            renditions.append(replace(Rendition.from_dict(json.loads(raw[f"r:{i}"])),
                                      done=raw.get(f"d:{i}") == "1",
                                      progress=float(raw.get(f"p:{i}") or 0.0)))
    return replace(stream, renditions=tuple(renditions))


class RedisStreamStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r: Any = client  # redis-py's types do not follow decode_responses
        self._record = client.register_script(_RECORD)
        self._progress = client.register_script(_PROGRESS)

    def _index(self, pipe: Any, stream: VideoStream) -> None:
        if stream.status.finished:
            pipe.srem(_UNFINISHED, stream.id)
        else:
            pipe.sadd(_UNFINISHED, stream.id)

    def add(self, stream: VideoStream) -> None:
        def write() -> None:
            with self.r.pipeline() as pipe:
                pipe.hset(_key(stream.id), mapping=_fields(stream, renditions=True))
                pipe.zadd(_tenant_key(stream.tenant), {stream.id: stream.created_at})
                pipe.set(_playback_key(stream.playback_id), stream.id)
                self._index(pipe, stream)
                pipe.execute()
        guard(write)

    def get(self, stream_id: str, tenant: str | None = None) -> VideoStream | None:
        raw = guard(lambda: self.r.hgetall(_key(stream_id)))
        if not raw or (tenant is not None and raw.get("tenant") != tenant):
            return None
        return _load(raw)

    def by_playback_id(self, playback_id: str) -> VideoStream | None:
        stream_id = guard(lambda: self.r.get(_playback_key(playback_id)))
        return self.get(stream_id) if stream_id else None

    def _many(self, ids: builtins.list[str]) -> builtins.list[VideoStream]:
        def read() -> builtins.list[dict[str, str]]:
            with self.r.pipeline(transaction=False) as pipe:
                for stream_id in ids:
                    pipe.hgetall(_key(stream_id))
                return list(pipe.execute())
        return [_load(raw) for raw in guard(read) if raw]

    def list(self, tenant: str, *, status: StreamStatus | None, limit: int,
             offset: int) -> tuple[builtins.list[VideoStream], int]:
        key = _tenant_key(tenant)
        if status is None:
            total = int(guard(lambda: self.r.zcard(key)))
            ids = guard(lambda: self.r.zrevrange(key, offset, offset + limit - 1))
            return self._many(builtins.list(ids)), total
        every = self._many(builtins.list(guard(lambda: self.r.zrevrange(key, 0, -1))))
        matching = [s for s in every if s.status == status]
        return matching[offset:offset + limit], len(matching)

    def update(self, stream_id: str, tenant: str | None = None,
               **changes: Any) -> VideoStream | None:
        key = _key(stream_id)

        def body(pipe: Any) -> VideoStream | None:
            raw = pipe.hgetall(key)
            if not raw or (tenant is not None and raw.get("tenant") != tenant):
                pipe.unwatch()
                return None
            new = replace(_load(raw), **changes)
            pipe.multi()
            if "renditions" in changes:
                pipe.delete(key)
            pipe.hset(key, mapping=_fields(new, renditions="renditions" in changes))
            self._index(pipe, new)
            pipe.execute()
            return new
        return transaction(self.r, key, body)

    def set_progress(self, stream_id: str, index: int, fraction: float) -> None:
        value = repr(max(0.0, min(1.0, fraction)))
        guard(lambda: self._progress(keys=[_key(stream_id)], args=[index, value]))

    def record_rendition(self, stream_id: str, rendition: Rendition) -> bool:
        done = replace(rendition, done=True, progress=1.0)
        last = guard(lambda: self._record(keys=[_key(stream_id)],
                                          args=[rendition.index, json.dumps(done.to_dict())]))
        return bool(last)

    def unfinished(self) -> builtins.list[VideoStream]:
        ids = sorted(guard(lambda: self.r.smembers(_UNFINISHED)))
        found = self._many(ids)
        return sorted((s for s in found if not s.status.finished),
                      key=lambda s: s.created_at)

    def remove(self, stream_id: str, tenant: str) -> bool:
        stream = self.get(stream_id, tenant)
        if stream is None:
            return False

        def delete() -> None:
            with self.r.pipeline() as pipe:
                pipe.delete(_key(stream_id))
                pipe.zrem(_tenant_key(tenant), stream_id)
                pipe.srem(_UNFINISHED, stream_id)
                pipe.delete(_playback_key(stream.playback_id))
                pipe.execute()
        guard(delete)
        return True
