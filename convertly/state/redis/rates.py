"""Rate-limit buckets on Redis (distributed mode), shared by every API process: one Lua
script per check runs the GCRA step (`convertly.state.gcra`) on Redis's own clock, so the
API hosts' clocks do not matter and two replicas never both take a bucket's last place.

Layout: `cv:rl:{bucket}` the bucket's theoretical arrival time (seconds, Redis clock),
expiring when the bucket is full again.
"""

from __future__ import annotations

from typing import Any

import redis

from convertly.state.records import RateDecision
from convertly.state.redis.client import P, guard

# KEYS[1] the bucket; ARGV: seconds per request, burst, 1 to count the request (0: ask).
# Returns {allowed, remaining, reset, retry_after} (the last two as strings: Redis turns Lua
# numbers into integers).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local capacity = burst * interval
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local current = math.max(tat, now)
local after = current + interval
local allow_at = after - capacity
if now < allow_at then
  return {0, 0, string.format('%.6f', current - now), string.format('%.6f', allow_at - now)}
end
local remaining = math.floor((now + capacity - after) / interval + 1e-9)
if ARGV[3] == '1' then
  redis.call('SET', KEYS[1], string.format('%.6f', after), 'PX',
             math.max(1, math.ceil((after - now) * 1000)))
  return {1, remaining, string.format('%.6f', after - now), '0'}
end
return {1, remaining, string.format('%.6f', current - now), '0'}
"""


class RedisRateLimitStore:
    def __init__(self, client: redis.Redis) -> None:
        self._take: Any = client.register_script(_TAKE)

    def take(self, bucket: str, rate: float, burst: int, *,
             consume: bool = True) -> RateDecision:
        allowed, remaining, reset, retry = guard(lambda: self._take(
            keys=[f"{P}rl:{bucket}"], args=[repr(1.0 / rate), burst, 1 if consume else 0]))
        return RateDecision(allowed=bool(allowed), limit=burst, remaining=max(0, int(remaining)),
                            reset=float(reset), retry_after=float(retry),
                            window=burst / rate)
