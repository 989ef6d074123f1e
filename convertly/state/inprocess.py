"""Rate-limit buckets in this process's memory: the embedded engine's `RateLimitStore`
(embedded mode runs one API process, so nothing needs sharing). A bucket is forgotten once
it is full again, so memory stays bounded by the buckets in use."""

from __future__ import annotations

import threading
import time

from convertly.state import gcra
from convertly.state.records import RateDecision

_PRUNE_EVERY = 1024  # buckets stored between two sweeps of the full ones


class InProcessRateLimitStore:
    def __init__(self) -> None:
        self._tats: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stored = 0

    def take(self, bucket: str, rate: float, burst: int, *,
             consume: bool = True) -> RateDecision:
        now = time.monotonic()
        with self._lock:
            decision, tat = gcra.step(self._tats.get(bucket), now, rate, burst, consume)
            if tat is not None:
                self._tats[bucket] = tat
                self._stored += 1
                if self._stored >= _PRUNE_EVERY:
                    self._stored = 0
                    self._tats = {k: v for k, v in self._tats.items() if v > now}
        return decision
