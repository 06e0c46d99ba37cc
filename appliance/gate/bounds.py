"""What one LAN host may hold through the gate: a cap on its open connections, and a
deadline for each connection to show what it is (a whole ClientHello, or a request's
headers). Pure: the addon calls it from mitmproxy's hooks and closes what it names.

Refusals by the cap are summarized (one record per interval, the top clients), never one
record per connection: a flood must not become a flood of records.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

SUMMARY_TOP = 10


class ClientBounds:
    def __init__(self, per_client: int, handshake: float) -> None:
        self.per_client, self.handshake = per_client, handshake
        self.open: Counter[str] = Counter()                  # client address -> connections
        self.admitted: set[str] = set()                      # ids of the connections counted
        self.pending: dict[str, tuple[float, Any]] = {}      # connection id -> (since, client)
        self.refused: Counter[str] = Counter()               # since the last summary

    def admit(self, client_id: str, address: str, client: Any, now: float) -> bool:
        """Count a new connection; False (refuse it) when its host holds its cap already."""
        if self.open[address] >= self.per_client:
            if len(self.refused) < 10_000 or address in self.refused:
                self.refused[address] += 1
            return False
        self.open[address] += 1
        self.admitted.add(client_id)
        self.pending[client_id] = (now, client)
        return True

    def watch(self, client_id: str, client: Any, now: float) -> None:
        """Under the deadline from `now`, if not already (a connection seen mid-handshake)."""
        self.pending.setdefault(client_id, (now, client))

    def decided(self, client_id: str) -> None:
        """The connection showed what it is: no deadline any more."""
        self.pending.pop(client_id, None)

    def release(self, client_id: str, address: str) -> None:
        """A connection closed; one the cap refused frees nothing."""
        self.pending.pop(client_id, None)
        if client_id in self.admitted:
            self.admitted.discard(client_id)
            self.open[address] -= 1
            if not self.open[address]:
                del self.open[address]

    def overdue(self, now: float) -> list[tuple[str, Any]]:
        """(id, client) of connections past the handshake deadline, taken off the watch."""
        late = [(cid, client) for cid, (since, client) in self.pending.items()
                if now - since >= self.handshake]
        for cid, _ in late:
            del self.pending[cid]
        return late

    def summary(self) -> dict[str, Any] | None:
        """The refusals since the last call (None if there were none)."""
        if not self.refused:
            return None
        top = dict(self.refused.most_common(SUMMARY_TOP))
        out = {"refused": sum(self.refused.values()), "clients": len(self.refused), "top": top,
               "cap": self.per_client}
        self.refused.clear()
        return out
