"""Stored-file records on Redis (distributed mode), shared by every API and worker
process. Writes that touch several keys go through MULTI (under WATCH when they read
first), so concurrent replicas never leave an index pointing at the wrong folder.

Layout (all keys under `cv:`):
    cv:file:{id}                  JSON: one stored file
    cv:files:{tenant}             zset of all the tenant's file ids by creation time
    cv:expiring                   zset of file ids by expiry time (temporary records)
    cv:jobfiles:{job}             set of the file ids of a job's outputs
    cv:lib:{tenant}               zset of listed (non-temporary) file ids by creation time
    cv:lib:{tenant}:in:{folder}   the same per folder (`root`: files in no folder)
    cv:lib:{tenant}:ready         set once the tenant's older records are indexed
    cv:bytes:{tenant}             sum of the sizes of the tenant's listed records, changed
                                  in the same MULTI as the records (once it exists; the
                                  first `stored_bytes` computes it from the records)
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import redis

from convertly.state.records import FileQuery, StoredFile, count_facets
from convertly.state.redis.client import P, guard, transaction

# KEYS[1] a tenant's byte count; ARGV[1] the change. A count not computed yet stays absent
# (`stored_bytes` computes it from the records).
_BUMP = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCRBY', KEYS[1], ARGV[1]) end
return 0
"""


class RedisFileStore:
    """Stored-file records. Listed records are also indexed per tenant and per folder
    (sorted sets by creation time), so a page of a listing costs the same whatever the
    tenant's size; a text, type, tag or orientation search reads the tenant's records."""

    def __init__(self, client: redis.Redis) -> None:
        self.r: Any = client  # redis-py's types do not follow decode_responses

    @staticmethod
    def _listed_key(tenant: str, folder: str | None = None, *, root: bool = False) -> str:
        if root:
            return f"{P}lib:{tenant}:in:root"
        return f"{P}lib:{tenant}" + (f":in:{folder}" if folder is not None else "")

    def _index(self, pipe: Any, before: StoredFile | None, after: StoredFile | None,
               *, count: bool = True) -> None:
        """Queue the index changes from `before` to `after` (None: no record), and the
        change of the tenant's byte count unless `count` is False."""
        if count:
            for record, sign in ((before, -1), (after, 1)):
                if record is not None and not record.temporary and record.size_bytes:
                    pipe.eval(_BUMP, 1, f"{P}bytes:{record.tenant}", sign * record.size_bytes)
        if before is not None and not before.temporary:
            pipe.zrem(self._listed_key(before.tenant), before.id)
            pipe.zrem(self._listed_key(before.tenant, before.folder_id,
                                       root=before.folder_id is None), before.id)
        if after is None:
            return
        pipe.zadd(f"{P}files:{after.tenant}", {after.id: after.created_at})
        if after.expires_at is None:
            pipe.zrem(f"{P}expiring", after.id)
        else:
            pipe.zadd(f"{P}expiring", {after.id: after.expires_at})
        if not after.temporary:
            pipe.zadd(self._listed_key(after.tenant), {after.id: after.created_at})
            pipe.zadd(self._listed_key(after.tenant, after.folder_id,
                                       root=after.folder_id is None),
                      {after.id: after.created_at})

    def add(self, record: StoredFile) -> StoredFile:
        return self.add_many((record,))[0]

    def add_many(self, records: Sequence[StoredFile]) -> builtins.list[StoredFile]:
        def run() -> None:
            with self.r.pipeline() as pipe:
                for record in records:
                    pipe.set(f"{P}file:{record.id}", json.dumps(record.to_dict()))
                    self._index(pipe, None, record)
                    if record.job_id is not None:
                        pipe.sadd(f"{P}jobfiles:{record.job_id}", record.id)
                pipe.execute()
        guard(run)
        return list(records)

    def _load(self, file_id: str) -> StoredFile | None:
        raw = guard(lambda: self.r.get(f"{P}file:{file_id}"))
        return StoredFile.from_dict(json.loads(raw)) if raw else None

    def get(self, file_id: str, tenant: str) -> StoredFile | None:
        record = self._load(file_id)
        if record is None or record.tenant != tenant:
            return None
        if record.expires_at is not None and record.expires_at < time.time():
            return None
        return record

    def _ensure_listed(self, tenant: str) -> None:
        """Index the tenant's records stored before listings were indexed, once."""
        ready = f"{P}lib:{tenant}:ready"
        if guard(lambda: self.r.exists(ready)):
            return
        ids = guard(lambda: self.r.zrange(f"{P}files:{tenant}", 0, -1))
        for start in range(0, len(ids), 500):
            keys = [f"{P}file:{i}" for i in ids[start:start + 500]]
            raws = self._mget(keys)
            records = [StoredFile.from_dict(json.loads(raw)) for raw in raws if raw]

            def run(records: builtins.list[StoredFile] = records) -> None:
                with self.r.pipeline() as pipe:
                    for record in records:
                        if not record.temporary and record.tenant == tenant:
                            # Counted by stored_bytes, which runs this first.
                            self._index(pipe, None, record, count=False)
                    pipe.execute()
            guard(run)
        guard(lambda: self.r.set(ready, "1"))

    def stored_bytes(self, tenant: str) -> int:
        counter = f"{P}bytes:{tenant}"
        raw = guard(lambda: self.r.get(counter))
        if raw is not None:
            return max(0, int(raw))
        self._ensure_listed(tenant)
        listed = self._listed_key(tenant)

        def body(pipe: Any) -> int:
            # Every change of a listed record touches the index: under WATCH, a sum that
            # misses one is never stored.
            pipe.watch(listed)
            total = 0
            ids = pipe.zrange(listed, 0, -1)
            for start in range(0, len(ids), 500):
                raws = pipe.mget([f"{P}file:{i}" for i in ids[start:start + 500]])
                for raw in raws:
                    record = StoredFile.from_dict(json.loads(raw)) if raw else None
                    if record is not None and record.tenant == tenant and not record.temporary:
                        total += record.size_bytes
            pipe.multi()
            pipe.set(counter, total, nx=True)
            pipe.get(counter)
            return max(0, int(pipe.execute()[1]))

        return transaction(self.r, counter, body)

    def _mget(self, keys: builtins.list[str]) -> builtins.list[str | None]:
        found: builtins.list[str | None] = guard(lambda: self.r.mget(keys))
        return found

    def _range(self, index: str, start: int, stop: int) -> builtins.list[str]:
        found: builtins.list[str] = guard(lambda: self.r.zrevrange(index, start, stop))
        return found

    def _records(self, tenant: str, index: str,
                 ids: builtins.list[str]) -> builtins.list[StoredFile]:
        """The records behind `ids`, dropping (and unindexing) ids whose record is gone."""
        if not ids:
            return []
        raws = self._mget([f"{P}file:{i}" for i in ids])
        records, stale = [], []
        for file_id, raw in zip(ids, raws, strict=True):
            record = StoredFile.from_dict(json.loads(raw)) if raw else None
            if record is None or record.tenant != tenant:
                stale.append(file_id)
            else:
                records.append(record)
        if stale:
            guard(lambda: self.r.zrem(index, *stale))
        return records

    def search(self, tenant: str, query: FileQuery, *, limit: int,
               offset: int) -> tuple[builtins.list[StoredFile], int]:
        self._ensure_listed(tenant)
        index = self._listed_key(tenant, query.folder_id, root=query.root_only)
        if query.scans:
            return self._scan(tenant, index, query, limit=limit, offset=offset)
        count = int(guard(lambda: self.r.zcard(index)))
        ids = self._range(index, offset, offset + limit - 1)
        return [r for r in self._records(tenant, index, ids) if query.matches(r)], count

    def _scan(self, tenant: str, index: str, query: FileQuery, *, limit: int,
              offset: int) -> tuple[builtins.list[StoredFile], int]:
        page: builtins.list[StoredFile] = []
        total = 0
        for record in self._matching(tenant, index, query):
            if offset <= total < offset + limit:
                page.append(record)
            total += 1
        return page, total

    def _matching(self, tenant: str, index: str, query: FileQuery) -> Iterator[StoredFile]:
        """The records of `index` that `query` matches, read 500 at a time."""
        start, batch = 0, 500
        while True:
            ids = self._range(index, start, start + batch - 1)
            for record in self._records(tenant, index, ids):
                if query.matches(record):
                    yield record
            if len(ids) < batch:
                return
            start += batch

    def facets(self, tenant: str, query: FileQuery, which: Iterable[str],
               limit: int) -> dict[str, builtins.list[tuple[str, int]]]:
        self._ensure_listed(tenant)
        index = self._listed_key(tenant, query.folder_id, root=query.root_only)
        return count_facets(self._matching(tenant, index, query), which, limit)

    def update(self, file_id: str, tenant: str, **changes: Any) -> StoredFile | None:
        fixed = {"id", "tenant", "key", "job_id"} & set(changes)
        if fixed:
            raise ValueError(f"cannot change {', '.join(sorted(fixed))}")
        key = f"{P}file:{file_id}"

        def body(pipe: Any) -> StoredFile | None:
            raw = pipe.get(key)
            before = StoredFile.from_dict(json.loads(raw)) if raw else None
            if before is None or before.tenant != tenant:
                pipe.unwatch()
                return None
            after = StoredFile.from_dict({**before.to_dict(), **changes})
            pipe.multi()
            pipe.set(key, json.dumps(after.to_dict()))
            self._index(pipe, before, after)
            pipe.execute()
            return after

        return transaction(self.r, key, body)

    def expired(self, now: float) -> builtins.list[StoredFile]:
        ids = guard(lambda: self.r.zrangebyscore(f"{P}expiring", 0, now))
        return [r for file_id in ids if (r := self._load(file_id)) is not None]

    def remove_for_job(self, job_id: str) -> None:
        for file_id in guard(lambda: self.r.smembers(f"{P}jobfiles:{job_id}")):
            self.remove(file_id)
        guard(lambda: self.r.delete(f"{P}jobfiles:{job_id}"))

    def remove(self, file_id: str) -> None:
        key = f"{P}file:{file_id}"

        def body(pipe: Any) -> None:
            raw = pipe.get(key)
            record = StoredFile.from_dict(json.loads(raw)) if raw else None
            pipe.multi()
            pipe.delete(key)
            pipe.zrem(f"{P}expiring", file_id)
            if record is not None:
                pipe.zrem(f"{P}files:{record.tenant}", file_id)
                self._index(pipe, record, None)
            pipe.execute()

        transaction(self.r, key, body)
