"""Addresses learned from DNS, with their provenance: which names produced them, and when.

Kinds: "vendor" and "bypass" addresses are dropped; "allow" addresses (isolate
mode's allowlisted names) are let through. Nothing here expires by the kernel's
clock: the daemon prunes an address only when no name has produced it for
`keep` seconds, so a dead daemon leaves every address blocked. The store is
saved to a file so the sets survive a reboot.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..atomic import atomic_write

KINDS = ("vendor", "bypass", "allow")
STORE = "learned-addresses.json"


def store_path(state_dir: str) -> str:
    """Where the daemon saves the store (and `lists ip`, `firewall show`, the gate read it)."""
    return os.path.join(state_dir, STORE)
AllowLookup = Callable[[str], Any]     # name -> its current allowlist entry (an Allow) or None


@dataclass
class Provenance:
    names: dict[str, list[float]] = field(default_factory=dict)   # name -> [first, last] seen

    @property
    def last_seen(self) -> float:
        return max(last for _, last in self.names.values())


class LearnedAddresses:
    def __init__(self, shared_policy: str = "block") -> None:
        self.shared_policy = shared_policy              # "block" | "allow"
        self.kinds: dict[str, dict[str, Provenance]] = {k: {} for k in KINDS}

    def observe(self, kind: str, name: str, addresses: Iterable[str], now: float) -> list[str]:
        """Record that `name` resolved to `addresses`; returns the addresses new to `kind`."""
        table, new = self.kinds[kind], []
        for address in addresses:
            entry = table.get(address)
            if entry is None:
                entry = table[address] = Provenance()
                new.append(address)
            seen = entry.names.setdefault(name, [now, now])
            seen[1] = now
        return new

    def conflict(self, address: str) -> bool:
        """Blocked (vendor or bypass) and allowed at once: a shared CDN address."""
        return address in self.kinds["allow"] and (address in self.kinds["vendor"]
                                                  or address in self.kinds["bypass"])

    def blocked(self, address: str) -> str | None:
        for kind in ("bypass", "vendor"):
            if address in self.kinds[kind]:
                return kind
        return None

    def prune(self, now: float, keep: float) -> list[tuple[str, str]]:
        """(kind, address) of every address no name produced within `keep` seconds, removed."""
        gone = []
        for kind, table in self.kinds.items():
            for address in [a for a, p in table.items() if now - p.last_seen > keep]:
                del table[address]
                gone.append((kind, address))
        return gone

    def services(self, address: str, allow_entry: AllowLookup) -> tuple[bool, set]:
        """(any port, {(proto, port)}) the *current* allowlist grants an allow address."""
        any_port, services = False, set()
        for name in self.kinds["allow"].get(address, Provenance()).names:
            entry = allow_entry(name)
            if entry is not None:
                any_port = any_port or not entry.services
                services.update(entry.services)
        return any_port, services

    def elements(self, allow_entry: AllowLookup = lambda name: None) -> dict[str, list]:
        """The learned sets' contents for the renderer; the shared-address policy applied."""
        allow_wins = self.shared_policy == "allow"
        allow = self.kinds["allow"]
        out = {"learned_vendor": [a for a in self.kinds["vendor"] if not (allow_wins and a in allow)],
               "learned_bypass": list(self.kinds["bypass"]), "learned_allow": [],
               "learned_allow_svc": []}
        for address in allow:
            any_port, services = self.services(address, allow_entry)
            if any_port:
                out["learned_allow"].append(address)
            out["learned_allow_svc"] += [(address, s) for s in sorted(services)]
        return out

    def names_for(self, address: str) -> list[str]:
        """Every name that produced `address`, whatever its kind, sorted."""
        return sorted({n for kind in self.kinds.values() if address in kind
                       for n in kind[address].names})

    def about(self, address: str) -> dict[str, dict]:
        """Provenance of one address, by kind (for `gcsguard lists ip`)."""
        return {kind: {"names": {n: {"first_seen": f, "last_seen": l}
                                 for n, (f, l) in sorted(table[address].names.items())}}
                for kind, table in self.kinds.items() if address in table}

    # --- persistence: one JSON file, replaced atomically -------------------------------
    def snapshot(self) -> str:
        """The store as JSON text: taken on the event loop, so no learning happens mid-copy."""
        return json.dumps({"version": 1, "addresses": {
            kind: {a: {"names": p.names} for a, p in table.items()}
            for kind, table in self.kinds.items()}})

    def save(self, path: str, text: str | None = None) -> None:
        """Write a snapshot (taken now, or given) atomically; safe to run in a thread."""
        atomic_write(path, self.snapshot() if text is None else text)

    def load(self, path: str) -> None:
        """Missing file: empty. A damaged file raises ValueError naming it (nothing is guessed)."""
        try:
            with open(path) as f:
                data = json.load(f)
            for kind, table in data["addresses"].items():
                self.kinds[kind] = {a: Provenance({n: list(t) for n, t in p["names"].items()})
                                    for a, p in table.items()}
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: cannot read learned addresses: {e}") from None
