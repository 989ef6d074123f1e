"""Rate-limit buckets in this process's memory: the embedded engine's `RateLimitStore`
(embedded mode runs one API process, so nothing needs sharing). A bucket is forgotten once
it is full again, so memory stays bounded by the buckets in use."""

from __future__ import annotations

import threading
import time

from convertly.state import gcra
from convertly.state.records import Bucket, RateDecision

_PRUNE_EVERY = 1024  # buckets stored between two sweeps of the full ones


class InProcessRateLimitStore:
    def __init__(self) -> None:
        self._tats: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stored = 0

    def check(self, take: Bucket | None, guard: Bucket | None = None
              ) -> tuple[RateDecision | None, RateDecision | None]:
        now = time.monotonic()
        with self._lock:
            guarded = None
            if guard is not None:
                guarded, _ = gcra.step(self._tats.get(guard.name), now, guard.rate,
                                       guard.burst, consume=False)
                if not guarded.allowed:
                    return None, guarded
            if take is None:
                return None, guarded
            decision, tat = gcra.step(self._tats.get(take.name), now, take.rate, take.burst,
                                      consume=True)
            if tat is not None:
                self._tats[take.name] = tat
                self._stored += 1
                if self._stored >= _PRUNE_EVERY:
                    self._stored = 0
                    self._tats = {k: v for k, v in self._tats.items() if v > now}
        return decision, guarded
