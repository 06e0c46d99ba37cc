"""Per-client token buckets, so one device cannot starve the others."""
from __future__ import annotations

import time
from typing import Callable


class RateLimiter:
    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 65536) -> None:
        self.rate, self.burst, self.clock, self.max_clients = rate, burst, clock, max_clients
        self._buckets: dict[str, list[float]] = {}      # client -> [tokens, last refill]
        self.limited: dict[str, int] = {}               # client -> queries refused, since summary

    def allow(self, client: str) -> bool:
        if self.rate <= 0:
            return True
        now = self.clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._buckets.clear()                   # a spoofed-source flood: start over
            bucket = self._buckets[client] = [self.burst, now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1:
            bucket[0] = tokens - 1
            return True
        bucket[0] = tokens
        self.limited[client] = self.limited.get(client, 0) + 1
        return False

    def take_summary(self) -> dict[str, int]:
        """Queries limited per client since the last call (for one summary event)."""
        limited, self.limited = self.limited, {}
        return limited
