"""Which name a device had for an address: the resolver's answers, remembered per device.

"ctl-03 tried 203.0.113.7:443 = mydjiflight.dji.com" needs the answer *that device*
got. A connection to an address the device never got from DNS is `direct-ip`: the
address was hard-coded or came from HTTPDNS (detection no DNS-only filter can do).
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable

from ..dns.chain import Answer, Request

ANSWERED = ("forwarded", "cached", "stale", "audited")


class Attribution:
    def __init__(self, size: int = 200_000, seconds: float = 86_400.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.size, self.seconds, self.clock = size, seconds, clock
        self._answers: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()

    def observe(self, req: Request, answer: Answer) -> None:
        """Called for every answer, before it leaves (resolver hot path: dict work only)."""
        if answer.verdict not in ANSWERED or not answer.summary:
            return
        now, name, answers = self.clock(), req.q.name, self._answers
        for item in answer.summary:
            if item.startswith("CNAME "):
                continue
            key = (req.client, item)
            answers[key] = (name, now)
            answers.move_to_end(key)
        while len(answers) > self.size:
            answers.popitem(last=False)

    def name_for(self, client: str, address: str) -> str | None:
        """The name `client` resolved to `address`, if it did recently enough."""
        hit = self._answers.get((client, address))
        if hit is None or self.clock() - hit[1] > self.seconds:
            return None
        return hit[0]
