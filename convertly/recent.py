"""`Recent`: values a process keeps for a few seconds after reading them, so that the many
small tasks of one job read a rarely changing answer once (`Services.webhook_targets`)."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recent(Generic[K, V]):
    """At most `size` values, each kept `ttl` seconds after it was read; the least recently
    read go first. Thread-safe; `load` runs outside the lock (two threads may both load)."""

    def __init__(self, ttl: float, size: int = 256) -> None:
        self.ttl, self.size = ttl, size
        self._values: collections.OrderedDict[K, tuple[float, V]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The value kept for `key`, or `load()` (kept from now on)."""
        now = time.monotonic()
        with self._lock:
            kept = self._values.get(key)
            if kept is not None and now - kept[0] < self.ttl:
                self._values.move_to_end(key)
                return kept[1]
        value = load()
        with self._lock:
            self._values[key] = (now, value)
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        return value
