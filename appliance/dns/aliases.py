"""isolate's aliases: the CNAME targets that answers to allowlisted names named.

A client that got `www.allowed.example CNAME edge.cdn.example` may look up the target
itself; in isolate that name is resolvable for as long as the answer that named it
lives (at least `MIN_SECONDS`). Bounded: past `capacity` the oldest are forgotten,
which only means a client's second lookup of a forgotten alias is refused.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable, Iterable

MIN_SECONDS = 300.0


class Aliases:
    def __init__(self, capacity: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity, self.clock = capacity, clock
        self._until: OrderedDict[str, float] = OrderedDict()

    def add(self, names: Iterable[str], ttl: float) -> None:
        until = self.clock() + max(ttl, MIN_SECONDS)
        for name in names:
            self._until[name] = until
            self._until.move_to_end(name)
        while len(self._until) > self.capacity:
            self._until.popitem(last=False)

    def __contains__(self, name: object) -> bool:
        until = self._until.get(name)                    # type: ignore[arg-type]
        return until is not None and until > self.clock()

    def __len__(self) -> int:
        return len(self._until)
