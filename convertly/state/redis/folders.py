"""Folders on Redis (distributed mode): one hash per tenant, `cv:folders:{tenant}` (folder
id -> JSON)."""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable
from typing import Any

import redis

from convertly.state.records import Folder
from convertly.state.redis.client import P, guard

# KEYS[1] the tenant's folder hash; ARGV: folder id, folder JSON. Stores only over an
# existing folder (a folder removed meanwhile stays removed).
_UPDATE_FOLDER = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


class RedisFolderStore:
    """Folders in one hash per tenant (`cv:folders:{tenant}`: id -> JSON)."""

    def __init__(self, client: redis.Redis) -> None:
        self.r: Any = client  # redis-py's types do not follow decode_responses
        self._update = client.register_script(_UPDATE_FOLDER)

    @staticmethod
    def _key(tenant: str) -> str:
        return f"{P}folders:{tenant}"

    def add(self, folder: Folder) -> None:
        guard(lambda: self.r.hset(self._key(folder.tenant), folder.id,
                                   json.dumps(folder.to_dict())))

    def get(self, folder_id: str, tenant: str) -> Folder | None:
        raw = guard(lambda: self.r.hget(self._key(tenant), folder_id))
        return Folder(**json.loads(raw)) if raw else None

    def all(self, tenant: str) -> builtins.list[Folder]:
        rows = guard(lambda: self.r.hgetall(self._key(tenant)))
        return [Folder(**json.loads(raw)) for raw in rows.values()]

    def update(self, folder: Folder) -> bool:
        done = guard(lambda: self._update(keys=[self._key(folder.tenant)],
                                           args=[folder.id, json.dumps(folder.to_dict())]))
        return bool(done)

    def remove(self, folder_ids: Iterable[str], tenant: str) -> None:
        ids = builtins.list(folder_ids)
        if ids:
            guard(lambda: self.r.hdel(self._key(tenant), *ids))
