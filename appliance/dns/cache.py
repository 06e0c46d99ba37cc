"""The answer cache: raw response bytes, never dnslib objects.

An object cache was measured at ~3.4 KB an entry with garbage-collector pauses
over 1 s; an entry here is the response body as bytes plus the positions of its
TTLs, so a hit is a copy and a few `pack_into`s. TTLs are clamped on insert,
aged on every answer, and expired entries are kept a while longer to serve
stale (RFC 8767) when every upstream fails.
"""
from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass

from . import wire


@dataclass(slots=True)
class Entry:
    flags: int              # the upstream's header flags (rcode, AD)
    counts: tuple[int, int, int]   # answer, authority, additional (without OPT)
    body: bytes             # the records after the question, OPT removed
    ttls: tuple[tuple[int, int], ...]   # (offset in body, clamped TTL)
    stored: float           # monotonic seconds
    ttl: int                # lifetime: min TTL of the records (or the negative TTL)
    summary: tuple[str, ...] = ()       # answer summary for the query log
    block: tuple | None = None          # (reason, match, matched) when blocked by the answer
    _aged: tuple[int, bytes] = (-1, b"")   # (age, body) last built: TTLs move once a second

    def remaining(self, now: float) -> int:
        return int(self.stored + self.ttl - now)

    def aged_body(self, now: float, stale_ttl: int | None = None) -> bytes:
        age = int(now - self.stored)
        if stale_ttl is None and self._aged[0] == age:
            return self._aged[1]
        body = bytearray(self.body)
        for offset, ttl in self.ttls:
            struct.pack_into("!I", body, offset, stale_ttl if stale_ttl is not None else max(0, ttl - age))
        if stale_ttl is not None:
            return bytes(body)
        self._aged = (age, bytes(body))
        return self._aged[1]


def entry_from_response(msg: bytes, now: float, min_ttl: int, max_ttl: int,
                        negative_max_ttl: int, walked: tuple | None = None) -> Entry:
    """An Entry for an upstream answer (NOERROR or NXDOMAIN); ttl 0 means do not cache.

    `walked` is `wire.records(msg)` if the caller has it already. Raises WireError for
    anything else: the caller treats it as a failed upstream."""
    flags, question_end, rrs = walked or wire.records(msg)
    rcode = flags & 0xF
    if rcode not in (wire.NOERROR, wire.NXDOMAIN) or flags & wire.TC:
        raise wire.WireError(f"not an answer (rcode {rcode})")
    end = len(msg)
    kept = rrs
    if rrs and rrs[-1].rtype == wire.OPT:
        opt = rrs[-1]
        end = opt.ttl_offset - 5          # owner (the root: one zero byte), type, class
        kept = rrs[:-1]
        if msg[end] != 0:
            raise wire.WireError("OPT owner is not the root")
    if any(r.rtype == wire.OPT for r in kept):
        raise wire.WireError("OPT is not the last record")
    counts = [0, 0, 0]
    for r in kept:
        counts[r.section] += 1
    answers = [r for r in kept if r.section == 0]
    if rcode == wire.NOERROR and answers:
        ttl = min(max(min_ttl, min(r.ttl for r in answers)), max_ttl)
    else:   # negative answer (NXDOMAIN or NODATA): RFC 2308, from the SOA
        soa = next((r for r in kept if r.section == 1 and r.rtype == wire.SOA), None)
        if soa is None or soa.rdlength < 22:
            ttl = 0                           # no SOA: not cacheable (RFC 2308 section 5)
        else:
            minimum = struct.unpack_from("!I", msg, soa.rdata_offset + soa.rdlength - 4)[0]
            ttl = min(soa.ttl, minimum, negative_max_ttl)
    ttls = tuple((r.ttl_offset - question_end, min(max(min_ttl, r.ttl), max_ttl)) for r in kept)
    body = bytearray(msg[question_end:end])
    for offset, value in ttls:
        struct.pack_into("!I", body, offset, value)
    return Entry(flags, (counts[0], counts[1], counts[2]), bytes(body), ttls, now, ttl)


class AnswerCache:
    def __init__(self, capacity: int, stale_seconds: int) -> None:
        self.capacity, self.stale_seconds = capacity, stale_seconds
        self._entries: OrderedDict[tuple, Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple, now: float) -> Entry | None:
        """A fresh entry, or None (a stale one stays for `stale`)."""
        entry = self._entries.get(key)
        if entry is None or entry.remaining(now) <= 0:
            return None
        self._entries.move_to_end(key)
        return entry

    def stale(self, key: tuple, now: float) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None or entry.remaining(now) < -self.stale_seconds:
            return None
        return entry

    def put(self, key: tuple, entry: Entry) -> None:
        if entry.ttl <= 0:
            return
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
