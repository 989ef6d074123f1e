"""Rate-limit buckets on Redis (distributed mode), shared by every API process: one Lua
script per check runs the GCRA step (`convertly.state.gcra`) on Redis's own clock, so the
API hosts' clocks do not matter and two replicas never both take a bucket's last place.

Layout: `cv:rl:{bucket}` the bucket's theoretical arrival time (seconds, Redis clock),
expiring when the bucket is full again.
"""

from __future__ import annotations

from typing import Any

import redis

from convertly.state.records import Bucket, RateDecision
from convertly.state.redis.client import P
from convertly.state.redis.client import guard as reach

# KEYS: the bucket to take from, the guard bucket. ARGV: seconds per request and burst of
# each ('' for a bucket not given). Returns the two decisions, each {allowed, remaining,
# reset, retry_after} or {-1, 0, '0', '0'} when not checked (floats as strings: Redis turns
# Lua numbers into integers).
_CHECK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local none = {-1, 0, '0', '0'}
local function step(key, interval, burst, consume)
  local capacity = burst * interval
  local tat = tonumber(redis.call('GET', key) or '0')
  local current = math.max(tat, now)
  local after = current + interval
  local allow_at = after - capacity
  if now < allow_at then
    return {0, 0, string.format('%.6f', current - now), string.format('%.6f', allow_at - now)}
  end
  local remaining = math.floor((now + capacity - after) / interval + 1e-9)
  if not consume then
    return {1, remaining, string.format('%.6f', current - now), '0'}
  end
  redis.call('SET', key, string.format('%.6f', after), 'PX',
             math.max(1, math.ceil((after - now) * 1000)))
  return {1, remaining, string.format('%.6f', after - now), '0'}
end
local guarded = none
if ARGV[3] ~= '' then
  guarded = step(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]), false)
  if guarded[1] == 0 then
    return {none[1], none[2], none[3], none[4], unpack(guarded)}
  end
end
local taken = none
if ARGV[1] ~= '' then
  taken = step(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), true)
end
return {taken[1], taken[2], taken[3], taken[4], guarded[1], guarded[2], guarded[3], guarded[4]}
"""


def _decision(raw: list[Any], bucket: Bucket | None) -> RateDecision | None:
    allowed, remaining, reset, retry = raw
    if bucket is None or int(allowed) == -1:
        return None
    return RateDecision(allowed=bool(allowed), limit=bucket.burst,
                        remaining=max(0, int(remaining)), reset=float(reset),
                        retry_after=float(retry), window=bucket.burst / bucket.rate)


def _args(bucket: Bucket | None) -> list[str]:
    return ["", ""] if bucket is None else [repr(1.0 / bucket.rate), str(bucket.burst)]


class RedisRateLimitStore:
    def __init__(self, client: redis.Redis) -> None:
        self._check: Any = client.register_script(_CHECK)

    def check(self, take: Bucket | None, guard: Bucket | None = None
              ) -> tuple[RateDecision | None, RateDecision | None]:
        if take is None and guard is None:
            return None, None
        keys = [f"{P}rl:{b.name}" if b is not None else f"{P}rl:-" for b in (take, guard)]
        out = reach(lambda: self._check(keys=keys, args=[*_args(take), *_args(guard)]))
        return _decision(out[:4], take), _decision(out[4:], guard)

