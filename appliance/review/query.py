"""Reading a copy of the logs offline: filters and summaries. Pure over the records."""
from __future__ import annotations

import fnmatch
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import orjson

from ..events.clock import parse_rfc3339
from ..evlog import chain


@dataclass(frozen=True)
class Filter:
    since: float | None = None       # epoch seconds, inclusive
    until: float | None = None       # exclusive
    device: str = ""                 # device_id, inventory name or IP
    vendor: str = ""
    action: str = ""
    type: str = ""                   # exact type or a prefix ending in '.' ("dns.")
    name: str = ""                   # glob on the name, e.g. "*.dji.com"

    def matches(self, r: dict[str, Any]) -> bool:
        if self.since is not None or self.until is not None:
            t = parse_rfc3339(r["time"])
            if (self.since is not None and t < self.since) or (self.until is not None and t >= self.until):
                return False
        if self.device and self.device not in (r.get("device_id"), r.get("device_name"), r.get("device_ip")):
            return False
        if self.vendor and r.get("vendor", "").lower() != self.vendor.lower():
            return False
        if self.action and r.get("action") != self.action:
            return False
        if self.type and not (r["type"] == self.type or
                              (self.type.endswith(".") and r["type"].startswith(self.type))):
            return False
        return not self.name or fnmatch.fnmatchcase(r.get("name", ""), self.name.lower())


def device_label(r: dict[str, Any]) -> str:
    """The most stable name a record has for its device: inventory name, MAC id, then IP."""
    return r.get("device_name") or r.get("device_id") or r.get("device_ip") or ""


def records(directory: str, progress: Callable[[int], object] | None = None,
            copy: bool = False) -> Iterator[dict[str, Any]]:
    """Every readable record in chain order (use `review verify` for integrity).
    `progress(bytes)` after each file. `copy`: a collector's copy, where a record a shipper
    sent twice comes again; only its first delivery is read (verify checks the others)."""
    last_n = 0
    for name in chain.log_files(directory):
        path = os.path.join(directory, name)
        for _, raw, terminated in chain.read_lines(path):
            if not terminated:
                break
            try:
                record = orjson.loads(raw)
            except ValueError:
                continue
            if copy:
                n = record.get("n") if isinstance(record, dict) else None
                if isinstance(n, int) and n <= last_n:
                    continue
                last_n = n if isinstance(n, int) else last_n
            yield record
        if progress is not None:
            progress(os.path.getsize(path))


def summarize(rows: Iterable[dict[str, Any]], by: str) -> list[dict[str, Any]]:
    """Counts per key (vendor, device, hour, type) with the split by action."""
    counts: dict[str, Counter] = {}
    for r in rows:
        if by == "hour":
            key = r["time"][:13] + ":00Z"
        elif by == "device":
            key = device_label(r) or "(none)"
        else:
            key = r.get(by) or "(none)"
        counts.setdefault(key, Counter())[r.get("action", "")] += 1
    actions = sorted({a for c in counts.values() for a in c})
    return [{by: key, "total": sum(counts[key].values()), **{a: counts[key][a] for a in actions}}
            for key in sorted(counts)]
