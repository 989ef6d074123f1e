"""Library taxonomy terms on Redis (distributed mode). Per tenant:

    cv:taxonomy:{tenant}          hash: term id -> JSON
    cv:taxonomy:{tenant}:slugs    hash: "{locale} {slug}" -> term id (a slug is unique per
                                  tenant and locale; the scripts keep both hashes in step)
"""

from __future__ import annotations

import builtins
import json
from typing import Any

import redis

from convertly.state.records import TaxonomyTerm
from convertly.state.redis.client import P, guard

# KEYS: terms hash, slugs hash. ARGV: id, slug key, JSON. 0 when the slug is taken.
_ADD = """
if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""

# KEYS: terms hash, slugs hash. ARGV: id, new slug key, JSON.
# 1 updated, 0 no such term, -1 the new slug is another term's.
_UPDATE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local owner = redis.call('HGET', KEYS[2], ARGV[2])
if owner and owner ~= ARGV[1] then return -1 end
local old = cjson.decode(raw)
local old_key = old['locale'] .. ' ' .. old['slug']
if old_key ~= ARGV[2] then redis.call('HDEL', KEYS[2], old_key) end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""

# KEYS: terms hash, slugs hash. ARGV: id. 1 removed, 0 no such term.
_REMOVE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local old = cjson.decode(raw)
redis.call('HDEL', KEYS[2], old['locale'] .. ' ' .. old['slug'])
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
"""


def _slug_key(term: TaxonomyTerm) -> str:
    return f"{term.locale} {term.slug}"


class RedisTaxonomyStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r: Any = client  # redis-py's types do not follow decode_responses
        self._add = client.register_script(_ADD)
        self._update = client.register_script(_UPDATE)
        self._remove = client.register_script(_REMOVE)

    @staticmethod
    def _keys(tenant: str) -> list[str]:
        return [f"{P}taxonomy:{tenant}", f"{P}taxonomy:{tenant}:slugs"]

    def add(self, term: TaxonomyTerm) -> bool:
        done = guard(lambda: self._add(keys=self._keys(term.tenant), args=[
            term.id, _slug_key(term), json.dumps(term.to_dict())]))
        return bool(done)

    def get(self, term_id: str, tenant: str) -> TaxonomyTerm | None:
        raw = guard(lambda: self.r.hget(self._keys(tenant)[0], term_id))
        return TaxonomyTerm.from_dict(json.loads(raw)) if raw else None

    def all(self, tenant: str, locale: str | None = None) -> builtins.list[TaxonomyTerm]:
        rows = guard(lambda: self.r.hvals(self._keys(tenant)[0]))
        terms = [TaxonomyTerm.from_dict(json.loads(raw)) for raw in rows]
        return sorted((t for t in terms if locale is None or t.locale == locale),
                      key=lambda t: (t.slug, t.locale))

    def count(self, tenant: str) -> int:
        return int(guard(lambda: self.r.hlen(self._keys(tenant)[0])))

    def update(self, term: TaxonomyTerm) -> str:
        done = int(guard(lambda: self._update(keys=self._keys(term.tenant), args=[
            term.id, _slug_key(term), json.dumps(term.to_dict())])))
        return {1: "updated", 0: "missing"}.get(done, "taken")

    def remove(self, term_id: str, tenant: str) -> bool:
        return bool(guard(lambda: self._remove(keys=self._keys(tenant), args=[term_id])))
