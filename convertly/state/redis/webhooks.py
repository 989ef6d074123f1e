"""Webhook state on Redis (distributed mode): the same contract as the SQLite store, shared
by every API and worker process. The steps that must not interleave (emitting an event,
claiming due deliveries, recording an attempt, a manual retry) are small Lua scripts.

Layout (all keys under `cv:wh:`):
    ep:{id}                 JSON endpoint
    eps:{tenant}            zset of the tenant's account endpoint ids by creation time
    jobeps:{job}            set of a job's callback endpoint ids (expires)
    job:{job}               hash: what the job has emitted (started, terminal, progress,
                            progress_at; expires)
    d:{id}                  hash: `meta` (JSON, every field but the snapshot) and `snapshot`
    stream:{endpoint}:{job} list of the stream's pending delivery ids, oldest first
    due:{tenant}            zset of the tenant's stream heads by next attempt time (a claim
                            moves the score to the end of its lease)
    duet                    zset of the tenants with stream heads, by their earliest score
                            (a claim goes through tenants, not through one tenant's backlog)
    dl:{tenant}             zset of the tenant's delivery ids by creation time
    jobdl:{tenant}:{job}    the same, for one job
    done                    zset of finished delivery ids by finish time (for purging)
"""

from __future__ import annotations

import builtins
import json
from typing import Any

import redis

from convertly.state.records import Delivery, DeliveryStatus, EmitState, Endpoint, Shares
from convertly.state.redis.client import guard

P = "cv:wh:"

# Keeps a tenant's place in `duet` at its earliest stream head (gone when it has none).
_RESCHEDULE = """
local function reschedule(pre, tenant)
  local first = redis.call('ZRANGE', pre .. 'due:' .. tenant, 0, 0, 'WITHSCORES')
  if first[1] then
    redis.call('ZADD', pre .. 'duet', first[2], tenant)
  else
    redis.call('ZREM', pre .. 'duet', tenant)
  end
end
"""

# KEYS[1] the job's emit state. ARGV: kind, progress, now, interval, ttl, prefix, then
# per delivery: id, stream, tenant, job, created, meta, snapshot. Returns 1 when emitted.
_EMIT = _RESCHEDULE + """
local state = KEYS[1]
if redis.call('HGET', state, 'terminal') == '1' then return 0 end
local kind = ARGV[1]
if kind == 'started' then
  if redis.call('HGET', state, 'started') == '1' then return 0 end
  redis.call('HSET', state, 'started', '1')
elseif kind == 'progress' then
  local last = tonumber(redis.call('HGET', state, 'progress') or '-1')
  local at = tonumber(redis.call('HGET', state, 'progress_at') or '0')
  if tonumber(ARGV[2]) <= last or tonumber(ARGV[3]) - at < tonumber(ARGV[4]) then
    return 0
  end
  redis.call('HSET', state, 'progress', ARGV[2], 'progress_at', ARGV[3])
else
  redis.call('HSET', state, 'terminal', '1')
end
redis.call('EXPIRE', state, ARGV[5])
local pre = ARGV[6]
for i = 7, #ARGV, 7 do
  local id, stream, tenant, job, created = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4]
  redis.call('HSET', pre .. 'd:' .. id, 'meta', ARGV[i+5], 'snapshot', ARGV[i+6])
  redis.call('ZADD', pre .. 'dl:' .. tenant, created, id)
  redis.call('ZADD', pre .. 'jobdl:' .. tenant .. ':' .. job, created, id)
  if redis.call('RPUSH', pre .. 'stream:' .. stream, id) == 1 then
    redis.call('ZADD', pre .. 'due:' .. tenant, ARGV[3], id)
    reschedule(pre, tenant)
  end
end
return 1
"""

# ARGV: now, limit, end of the lease, per tenant, per endpoint, JSON {"t": {tenant: n},
# "e": {endpoint: n}} of the deliveries in flight, prefix. Returns the claimed ids: the
# tenants due earliest first, each within its share, taking turns (one delivery each).
# Also moves stream heads from the single `due` zset of earlier versions, once.
_CLAIM = _RESCHEDULE + """
local now, limit, lease_end = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local per_tenant, per_endpoint = tonumber(ARGV[4]), tonumber(ARGV[5])
local busy = cjson.decode(ARGV[6])
local pre = ARGV[7]
local legacy = pre .. 'due'
if redis.call('EXISTS', legacy) == 1 then
  local old = redis.call('ZRANGE', legacy, 0, -1, 'WITHSCORES')
  for i = 1, #old, 2 do
    local meta = redis.call('HGET', pre .. 'd:' .. old[i], 'meta')
    if meta then
      local tenant = cjson.decode(meta)['tenant']
      redis.call('ZADD', pre .. 'due:' .. tenant, old[i + 1], old[i])
      reschedule(pre, tenant)
    end
  end
  redis.call('DEL', legacy)
end
local tenants = redis.call('ZRANGEBYSCORE', pre .. 'duet', '-inf', now, 'LIMIT', 0, 1000)
local taken = {}
local turns = {}
for _, tenant in ipairs(tenants) do
  local room = per_tenant - (tonumber(busy['t'][tenant]) or 0)
  if room > 0 then
    local due = pre .. 'due:' .. tenant
    local chosen = {}
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, 100)) do
      if #chosen >= room then break end
      local meta = redis.call('HGET', pre .. 'd:' .. id, 'meta')
      if not meta then
        redis.call('ZREM', due, id)  -- purged meanwhile
      else
        local endpoint = cjson.decode(meta)['endpoint_id']
        local used = (tonumber(busy['e'][endpoint]) or 0) + (taken[endpoint] or 0)
        if used < per_endpoint then
          taken[endpoint] = (taken[endpoint] or 0) + 1
          table.insert(chosen, id)
        end
      end
    end
    table.insert(turns, {tenant, chosen})
  end
end
local claimed = {}
local turn = 1
while #claimed < limit do
  local more = false
  for _, entry in ipairs(turns) do
    local id = entry[2][turn]
    if id and #claimed < limit then
      redis.call('ZADD', pre .. 'due:' .. entry[1], lease_end, id)
      table.insert(claimed, id)
      more = true
    end
  end
  if not more then break end
  turn = turn + 1
end
for _, entry in ipairs(turns) do reschedule(pre, entry[1]) end
return claimed
"""

# KEYS: the delivery hash, the tenant's due, its stream, done. ARGV: meta, status, next
# attempt, now, id, prefix, tenant.
_RECORD = _RESCHEDULE + """
redis.call('HSET', KEYS[1], 'meta', ARGV[1])
if ARGV[2] == 'pending' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
  reschedule(ARGV[6], ARGV[7])
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[5])
redis.call('LREM', KEYS[3], 1, ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[5])
local nxt = redis.call('LINDEX', KEYS[3], 0)
if nxt then redis.call('ZADD', KEYS[2], ARGV[4], nxt) end
reschedule(ARGV[6], ARGV[7])
return 1
"""

# KEYS: the delivery hash, the tenant's due, its stream, done. ARGV: new meta, now, id,
# prefix, tenant.
_RETRY = _RESCHEDULE + """
local meta = redis.call('HGET', KEYS[1], 'meta')
if not meta or cjson.decode(meta)['status'] == 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'meta', ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[3])
if redis.call('RPUSH', KEYS[3], ARGV[3]) == 1 then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
  reschedule(ARGV[4], ARGV[5])
end
return 1
"""


class RedisWebhookStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r: Any = client  # redis-py's types do not follow decode_responses
        self._emit = client.register_script(_EMIT)
        self._claim = client.register_script(_CLAIM)
        self._record = client.register_script(_RECORD)
        self._retry = client.register_script(_RETRY)

    # --- endpoints ---

    def add_endpoint(self, endpoint: Endpoint, ttl: int) -> None:
        def run() -> None:
            with self.r.pipeline() as pipe:
                key = f"{P}ep:{endpoint.id}"
                pipe.set(key, json.dumps(endpoint.to_dict()))
                if endpoint.job_id is None:
                    pipe.zadd(f"{P}eps:{endpoint.tenant}", {endpoint.id: endpoint.created_at})
                else:
                    pipe.expire(key, ttl)
                    pipe.sadd(f"{P}jobeps:{endpoint.job_id}", endpoint.id)
                    pipe.expire(f"{P}jobeps:{endpoint.job_id}", ttl)
                pipe.execute()
        guard(run)

    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        raw = guard(lambda: self.r.get(f"{P}ep:{endpoint_id}"))
        return None if raw is None else Endpoint.from_dict(json.loads(raw))

    def _load_endpoints(self, ids: builtins.list[str]) -> builtins.list[Endpoint]:
        if not ids:
            return []
        raws = guard(lambda: self.r.mget([f"{P}ep:{i}" for i in ids]))
        return [Endpoint.from_dict(json.loads(raw)) for raw in raws if raw is not None]

    def endpoints(self, tenant: str) -> builtins.list[Endpoint]:
        return self._load_endpoints(guard(lambda: self.r.zrange(f"{P}eps:{tenant}", 0, -1)))

    def remove_endpoint(self, endpoint_id: str, tenant: str) -> bool:
        found = self.endpoint(endpoint_id)
        if found is None or found.tenant != tenant or found.job_id is not None:
            return False

        def run() -> None:
            with self.r.pipeline() as pipe:
                pipe.delete(f"{P}ep:{endpoint_id}")
                pipe.zrem(f"{P}eps:{tenant}", endpoint_id)
                pipe.execute()
        guard(run)
        return True

    def targets(self, tenant: str, job_id: str) -> builtins.list[Endpoint]:
        def read() -> builtins.list[str]:
            with self.r.pipeline(transaction=False) as pipe:
                pipe.zrange(f"{P}eps:{tenant}", 0, -1)
                pipe.smembers(f"{P}jobeps:{job_id}")
                account, own = pipe.execute()
            return [*account, *sorted(own)]
        return [e for e in self._load_endpoints(guard(read)) if e.tenant == tenant]

    # --- events ---

    def emit_state(self, job_id: str) -> EmitState:
        data = guard(lambda: self.r.hgetall(f"{P}job:{job_id}"))
        return EmitState(started=data.get("started") == "1",
                         terminal=data.get("terminal") == "1",
                         progress=int(data.get("progress", -1)),
                         progress_at=float(data.get("progress_at", 0.0)))

    def emit(self, job_id: str, kind: str, progress: int, now: float, interval: float,
             deliveries: builtins.list[Delivery], ttl: int) -> bool:
        args: builtins.list[Any] = [kind, progress, repr(now), repr(interval), ttl, P]
        for d in deliveries:
            args += [d.id, d.stream, d.tenant, d.job_id, repr(d.created_at),
                     json.dumps(d.meta()), d.snapshot]
        return bool(guard(lambda: self._emit(keys=[f"{P}job:{job_id}"], args=args)))

    # --- sending ---

    def _load(self, ids: builtins.list[str]) -> builtins.list[Delivery]:
        if not ids:
            return []

        def read() -> builtins.list[Any]:
            with self.r.pipeline(transaction=False) as pipe:
                for delivery_id in ids:
                    pipe.hmget(f"{P}d:{delivery_id}", "meta", "snapshot")
                rows: builtins.list[Any] = pipe.execute()
                return rows
        return [Delivery.from_meta(json.loads(meta), snapshot)
                for meta, snapshot in guard(read) if meta is not None]

    def claim_due(self, now: float, limit: int, lease: float, shares: Shares
                  ) -> builtins.list[Delivery]:
        # An empty Lua table encodes as an object and decodes from one: {} is safe here.
        busy = json.dumps({"t": dict(shares.tenants), "e": dict(shares.endpoints)})
        ids = guard(lambda: self._claim(
            keys=[f"{P}duet"], args=[repr(now), limit, repr(now + lease), shares.per_tenant,
                                     shares.per_endpoint, busy, P]))
        return self._load(ids)

    def _keys(self, delivery: Delivery) -> builtins.list[str]:
        return [f"{P}d:{delivery.id}", f"{P}due:{delivery.tenant}",
                f"{P}stream:{delivery.stream}", f"{P}done"]

    def record_attempt(self, delivery: Delivery) -> None:
        args = [json.dumps(delivery.meta()), delivery.status.value,
                repr(delivery.next_attempt_at or 0.0),
                repr(delivery.finished_at or delivery.last_attempt_at or 0.0), delivery.id,
                P, delivery.tenant]
        guard(lambda: self._record(keys=self._keys(delivery), args=args))

    # --- the log ---

    def delivery(self, delivery_id: str, tenant: str) -> Delivery | None:
        found = self._load([delivery_id])
        return found[0] if found and found[0].tenant == tenant else None

    def deliveries(self, tenant: str, *, job_id: str | None, limit: int, offset: int
                   ) -> tuple[builtins.list[Delivery], int]:
        index = f"{P}dl:{tenant}" if job_id is None else f"{P}jobdl:{tenant}:{job_id}"

        def read() -> tuple[int, builtins.list[str]]:
            with self.r.pipeline(transaction=False) as pipe:
                pipe.zcard(index)
                pipe.zrevrange(index, offset, offset + limit - 1)
                total, ids = pipe.execute()
            return int(total), ids
        total, ids = guard(read)
        return self._load(ids), total

    def retry(self, delivery_id: str, tenant: str, now: float) -> Delivery | None:
        delivery = self.delivery(delivery_id, tenant)
        if delivery is None or delivery.status is DeliveryStatus.PENDING:
            return None
        again = delivery.retried(now)
        done = guard(lambda: self._retry(keys=self._keys(again),
                                          args=[json.dumps(again.meta()), repr(now),
                                                again.id, P, again.tenant]))
        return again if done else None

    def purge(self, before: float) -> int:
        ids = guard(lambda: self.r.zrangebyscore(f"{P}done", "-inf", f"({before!r}",
                                                  start=0, num=1000))
        if not ids:
            return 0
        gone = [d for d in self._load(ids) if d.status is not DeliveryStatus.PENDING]

        def run() -> None:
            with self.r.pipeline() as pipe:
                for d in gone:
                    pipe.delete(f"{P}d:{d.id}")
                    pipe.zrem(f"{P}dl:{d.tenant}", d.id)
                    pipe.zrem(f"{P}jobdl:{d.tenant}:{d.job_id}", d.id)
                pipe.zrem(f"{P}done", *ids)
                pipe.execute()
        guard(run)
        return len(gone)
