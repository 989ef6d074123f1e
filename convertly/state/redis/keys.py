"""API keys on Redis (distributed mode).

Layout: `cv:key:{prefix}` hash (`hash`, `record` JSON) per key; `cv:keys` zset of prefixes by
creation time; `cv:limits:{tenant}` JSON, a tenant's own limits.
"""

from __future__ import annotations

import builtins
import json
from typing import Any

import redis

from convertly.state.records import ApiKey, TenantLimits
from convertly.state.redis.client import P, guard


class RedisKeyStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r: Any = client  # redis-py's types do not follow decode_responses

    def insert(self, record: ApiKey, key_hash: str) -> None:
        def run() -> None:
            with self.r.pipeline() as pipe:
                pipe.hset(f"{P}key:{record.prefix}", mapping={
                    "hash": key_hash, "record": json.dumps(record.__dict__)})
                pipe.zadd(f"{P}keys", {record.prefix: record.created_at})
                pipe.execute()
        guard(run)

    def by_prefix(self, prefix: str) -> tuple[ApiKey, str] | None:
        data = guard(lambda: self.r.hgetall(f"{P}key:{prefix}"))
        if not data:
            return None
        return ApiKey(**json.loads(data["record"])), data["hash"]

    def all(self) -> builtins.list[ApiKey]:
        prefixes = guard(lambda: self.r.zrange(f"{P}keys", 0, -1))
        return [found[0] for p in prefixes if (found := self.by_prefix(p)) is not None]

    def update(self, record: ApiKey) -> None:
        guard(lambda: self.r.hset(f"{P}key:{record.prefix}", "record",
                                   json.dumps(record.__dict__)))

    def limits(self, tenant: str) -> TenantLimits:
        raw = guard(lambda: self.r.get(f"{P}limits:{tenant}"))
        return TenantLimits() if raw is None else TenantLimits.from_dict(json.loads(raw))

    def set_limits(self, tenant: str, limits: TenantLimits) -> None:
        key = f"{P}limits:{tenant}"
        if limits == TenantLimits():
            guard(lambda: self.r.delete(key))
        else:
            guard(lambda: self.r.set(key, json.dumps(limits.to_dict())))
