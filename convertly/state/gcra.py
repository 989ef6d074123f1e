"""The generic cell rate algorithm (GCRA), the rate limit both engines apply: a bucket of
`burst` requests refilled at `rate` a second, kept as one number per bucket, its theoretical
arrival time (TAT). `convertly.state.inprocess` runs it in Python; the Redis engine runs the
same steps in Lua (`convertly.state.redis.rates`), on Redis's clock."""

from __future__ import annotations

import math

from convertly.state.records import RateDecision


def step(tat: float | None, now: float, rate: float, burst: int,
         consume: bool) -> tuple[RateDecision, float | None]:
    """Check one request against a bucket whose TAT is `tat` (None: full) at time `now`:
    (the decision, the TAT to store; None when nothing changes)."""
    interval = 1.0 / rate
    capacity = burst * interval
    window = capacity
    current = max(tat if tat is not None else now, now)
    after = current + interval
    allow_at = after - capacity
    if now < allow_at:
        return RateDecision(allowed=False, limit=burst, remaining=0, reset=current - now,
                            retry_after=allow_at - now, window=window), None
    remaining = math.floor((now + capacity - after) / interval + 1e-9)
    decision = RateDecision(allowed=True, limit=burst, remaining=max(0, remaining),
                            reset=after - now if consume else current - now, retry_after=0.0,
                            window=window)
    return decision, after if consume else None
