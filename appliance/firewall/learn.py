"""Learning addresses: resolving vendor and allowed names, and watching the resolver's answers.

What the learner itself resolves comes from configuration alone: the lists' entries
that are names, the allowlist's names, and the CNAME targets their own answers name.
Each is re-resolved through the appliance's upstream when its TTL runs out (at most
every `min_interval` seconds). From clients it learns only what an allowed query's
answer already holds (the addresses, under the listed name that matched): it never
resolves a name because a client asked for it, so a refused lookup's labels never
leave the box (docs/network.md). New addresses go to `on_new`, which adds them to the
nft sets element by element.
"""
from __future__ import annotations

import asyncio
import heapq
import ipaddress
import logging
import secrets
import struct
import time
from typing import Awaitable, Callable

import dnslib

from ..dns import wire
from ..dns.chain import Answer, Request
from ..lists import ListSet
from ..policy.allow import Allow, AllowNames
from ..policy.reasons import address_kind
from .learned import LearnedAddresses

log = logging.getLogger("gcsguard.learn")
NO_ADDRESS_RETRY = 3600.0     # seconds: most listed names are apexes or retired hosts
Resolve = Callable[[wire.Query], Awaitable[bytes | None]]
OnNew = Callable[[str, str, list[str]], None]           # kind, name, new addresses


def make_query(name: str, qtype: int) -> wire.Query:
    labels = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".") if label)
    question = labels + b"\0" + struct.pack("!HH", qtype, 1)
    return wire.Query(id=secrets.randbits(16), flags=wire.RD, name=name, qtype=qtype, qclass=1,
                      question=question, edns=False, udp_size=512, do=False, raw=b"")


def answer_addresses(response: bytes) -> tuple[list[str], list[str], int]:
    """(addresses, CNAME targets, smallest TTL) of an answer."""
    record = dnslib.DNSRecord.parse(response)
    addresses, targets, ttl = [], [], 86400
    for rr in record.rr:
        ttl = min(ttl, rr.ttl)
        if rr.rtype in (dnslib.QTYPE.A, dnslib.QTYPE.AAAA):
            addresses.append(str(ipaddress.ip_address(str(rr.rdata))))
        elif rr.rtype == dnslib.QTYPE.CNAME:
            targets.append(str(rr.rdata).rstrip(".").lower())
    return addresses, targets, ttl


class Learner:
    def __init__(self, store: LearnedAddresses, resolve: Resolve, on_new: OnNew,
                 min_interval: float, rate: float = 200.0, concurrency: int = 16,
                 clock: Callable[[], float] = time.time) -> None:
        self.store, self.resolve, self.on_new = store, resolve, on_new
        self.min_interval, self.rate, self.clock = min_interval, rate, clock
        self.concurrency = concurrency
        self._due: list[tuple] = []                            # (when, priority, seq, name, kind)
        self._seq = 0
        self._inflight: set[asyncio.Task] = set()
        self._known: dict[str, str] = {}                       # name -> kind
        self.allow_entry = AllowNames([])
        self._wake = asyncio.Event()
        self.resolved = self.failed = 0

    # --- what to learn ------------------------------------------------------------------
    def set_policy(self, lists: ListSet, allows: list[Allow]) -> None:
        """After a (re)load: schedule every name the lists and the allowlist now hold."""
        self.allow_entry = AllowNames(allows)
        for name, source in lists.domains.resolvable():
            if source.kind == "block":
                self.want(name, address_kind(source.category), priority=1)
        for name in self.allow_entry.entries:
            self.want(name, "allow", priority=1)

    def want(self, name: str, kind: str, priority: int = 0) -> None:
        """Resolve `name` soon (a configured name, or a CNAME target of one's answer)."""
        if self._known.get(name) != kind:
            self._known[name] = kind
            self._push(0.0, name, kind, priority)

    # --- the resolver's answers (called on the loop, before the answer is sent) ----------
    def observe(self, req: Request, answer: Answer) -> None:
        """The addresses an upstream answer gave: a vendor's when the judge matched the
        answer (blocked or audited), an allowlisted name's in isolate. Only what the answer
        holds is learned; nothing is looked up for it."""
        addresses = [a for a in answer.summary if not a.startswith("CNAME ")]
        if not addresses:
            return                                      # refused by name: nothing left the box
        if answer.match is not None and answer.verdict in ("blocked", "audited"):
            listed = answer.matched if answer.reason == "cname-list" else req.q.name
            self._learn(address_kind(answer.match.source.category), listed, addresses)
        elif self.allow_entry.entries and self.allow_entry(req.q.name) is not None:
            self._learn("allow", req.q.name, addresses)

    def _learn(self, kind: str, name: str, addresses: list[str]) -> None:
        new = self.store.observe(kind, name, addresses, self.clock())
        if new:
            self.on_new(kind, name, new)

    # --- the schedule -------------------------------------------------------------------
    def pending(self) -> int:
        """Names due now or being resolved (0 once the first pass is done)."""
        now = self.clock()
        return sum(1 for when, *_ in self._due if when <= now) + len(self._inflight)

    async def run(self) -> None:
        slots = asyncio.Semaphore(self.concurrency)
        while True:
            now = self.clock()
            if not self._due or self._due[0][0] > now:
                delay = self._due[0][0] - now if self._due else 3600.0
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.01))
                except asyncio.TimeoutError:
                    pass
                continue
            _, _, _, name, kind = heapq.heappop(self._due)
            if self._known.get(name) != kind:
                continue                                         # superseded
            await slots.acquire()
            task = asyncio.create_task(self._refresh(name, kind, slots))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            await asyncio.sleep(1.0 / self.rate)

    async def _refresh(self, name: str, kind: str, slots: asyncio.Semaphore) -> None:
        try:
            ttl = await self.refresh(name, kind)
        except Exception:                      # one name must never stop the learner
            log.exception("resolving %s failed", name)
            self.failed += 1
            ttl = self.min_interval
        finally:
            slots.release()
        self._push(self.clock() + max(ttl, self.min_interval), name, kind, priority=1)

    def _push(self, when: float, name: str, kind: str, priority: int) -> None:
        self._seq += 1
        heapq.heappush(self._due, (when, priority, self._seq, name, kind))
        self._wake.set()

    async def refresh(self, name: str, kind: str) -> float:
        """Resolve A and AAAA now; returns when to look again: the answers' smallest TTL, the
        minimum interval after a failure, an hour for a name with no address at all."""
        ttl, failed = None, False
        for qtype in (wire.A, wire.AAAA):
            response = await self.resolve(make_query(name, qtype))
            try:
                if not response:
                    raise dnslib.DNSError("no answer")
                addresses, targets, answer_ttl = answer_addresses(response)
            except dnslib.DNSError:
                self.failed += 1
                failed = True
                continue
            self.resolved += 1
            if kind != "allow":
                for target in targets:
                    self.want(target, kind)
            if addresses:
                ttl = answer_ttl if ttl is None else min(ttl, answer_ttl)
                self._learn(kind, name, addresses)
        if ttl is not None:
            return ttl
        return self.min_interval if failed else max(self.min_interval, NO_ADDRESS_RETRY)
