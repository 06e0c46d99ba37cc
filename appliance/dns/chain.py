"""The resolver's policy: a chain of small links, assembled in `build_chain` only.

Each link answers (returns the response bytes), or passes the request on to the
next one. Links that need the network return an awaitable instead of bytes, so
blocked names and cache hits are answered without creating a task.
"""
from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Union

from ..lists import ListSet, Match
from . import answers, wire
from .cache import AnswerCache, entry_from_response
from .upstream import Forwarder

Result = Union[bytes, Awaitable[bytes]]

# Names that tell clients and OSes whether private DNS or relays may bypass us.
CANARIES = {"use-application-dns.net": "nxdomain",     # Firefox: do not enable DoH
            "mask.icloud.com": "nxdomain",             # iCloud Private Relay off
            "mask-h2.icloud.com": "nxdomain",
            "resolver.arpa": "nodata"}                 # DDR (RFC 9462): no designated resolver


@dataclass(slots=True)
class Request:
    q: wire.Query
    client: str
    tcp: bool
    start_ns: int = field(default_factory=time.perf_counter_ns)
    verdict: str = "forwarded"   # blocked | bypass | audited | cached | forwarded | stale | servfail
    reason: str = "forwarded"    # bounded: name-list | cname-list | address-list | bypass-canary | ...
    match: Match | None = None
    matched: str = ""            # the CNAME target or address that matched, for the record
    upstream: bytes | None = None
    walked: tuple | None = None  # wire.records(upstream), read once by AnswerBlock
    summary: tuple[str, ...] = ()


class Link:
    next: "Link"

    def resolve(self, req: Request) -> Result:
        raise NotImplementedError


AUDIT_EXEMPT = frozenset({"doh", "dot", "httpdns", "resolver"})   # bypasses stay closed in audit


@dataclass
class Sinkhole:
    mode: str    # nxdomain | nodata | null
    ttl: int
    audit: Callable[[], bool] = lambda: False    # audit mode: vendor names resolve, logged

    def enforces(self, match: Match) -> bool:
        return match.source.category in AUDIT_EXEMPT or not self.audit()

    def answer(self, q: wire.Query, mode: str | None = None) -> bytes:
        return answers.sinkhole_for(q, mode or self.mode, self.ttl)


class Recorder(Link):
    """First: sees every answer, however it was made, and hands it to `record`."""

    def __init__(self, record: Callable[[Request, bytes], None]) -> None:
        self.record = record

    def resolve(self, req: Request) -> Result:
        result = self.next.resolve(req)
        if isinstance(result, bytes):
            self.record(req, result)
            return result
        return self._later(req, result)

    async def _later(self, req: Request, pending: Awaitable[bytes]) -> bytes:
        response = await pending
        self.record(req, response)
        return response


class BypassGuard(Link):
    def __init__(self, sinkhole: Sinkhole) -> None:
        self.sinkhole = sinkhole

    def resolve(self, req: Request) -> Result:
        name = req.q.name
        mode = CANARIES.get(name) or ("nodata" if name.endswith(".resolver.arpa") else None)
        if mode is None:
            return self.next.resolve(req)
        req.verdict, req.reason = "bypass", "bypass-canary"
        return self.sinkhole.answer(req.q, mode)


class NameBlock(Link):
    """Blocks by the query name (and every name under a listed one); verdicts memoized."""

    def __init__(self, lists: Callable[[], ListSet], sinkhole: Sinkhole, memo_size: int = 65536) -> None:
        self.lists, self.sinkhole, self.memo_size = lists, sinkhole, memo_size
        self._memo: dict[str, Match | None] = {}
        self._memo_for: ListSet | None = None

    def resolve(self, req: Request) -> Result:
        lists = self.lists()
        if lists is not self._memo_for or len(self._memo) >= self.memo_size:
            self._memo, self._memo_for = {}, lists          # new lists (reload) or full
        name = req.q.name
        try:
            match = self._memo[name]
        except KeyError:
            verdict = lists.check_name(name)
            match = self._memo[name] = verdict.block if verdict.blocked else None
        if match is None:
            return self.next.resolve(req)
        if not self.sinkhole.enforces(match):
            req.verdict, req.reason, req.match = "audited", "name-list", match
            return self.next.resolve(req)
        req.verdict, req.reason, req.match = "blocked", "name-list", match
        return self.sinkhole.answer(req.q)


class CacheLink(Link):
    """Answers from the cache; stores what comes back; serves stale when upstreams fail."""

    def __init__(self, cache: AnswerCache, sinkhole: Sinkhole, ttl_limits: tuple[int, int, int],
                 stale_answer_ttl: int = 30, clock: Callable[[], float] = time.monotonic) -> None:
        self.cache, self.sinkhole, self.ttl_limits = cache, sinkhole, ttl_limits
        self.stale_answer_ttl, self.clock = stale_answer_ttl, clock

    @staticmethod
    def key(q: wire.Query) -> tuple:
        return q.name, q.qtype, q.qclass, q.do, bool(q.flags & wire.CD)

    def _serve(self, req: Request, entry, now: float, stale: bool) -> bytes:
        req.summary = entry.summary
        if entry.block is not None:
            req.verdict, req.reason = "blocked", entry.block[0]
            req.match, req.matched = entry.block[1], entry.block[2]
            return self.sinkhole.answer(req.q)
        if req.verdict != "audited":
            req.verdict = req.reason = "stale" if stale else "cached"
        return answers.cached_for(req.q, entry, now, self.stale_answer_ttl if stale else None)

    def resolve(self, req: Request) -> Result:
        now = self.clock()
        entry = self.cache.get(self.key(req.q), now)
        if entry is not None:
            return self._serve(req, entry, now, stale=False)
        return self._miss(req, self.next.resolve(req))

    async def _miss(self, req: Request, pending: Result) -> bytes:
        response = pending if isinstance(pending, bytes) else await pending
        now = self.clock()
        key = self.key(req.q)
        if req.upstream is None:                         # every upstream failed
            stale = self.cache.stale(key, now)
            if stale is not None:
                return self._serve(req, stale, now, stale=True)
            req.verdict = req.reason = "servfail"
            return answers.error(req.q, wire.SERVFAIL)
        try:
            entry = entry_from_response(req.upstream, now, *self.ttl_limits, walked=req.walked)
        except wire.WireError:
            req.verdict = req.reason = "servfail"
            return answers.error(req.q, wire.SERVFAIL)
        entry.summary = req.summary
        if req.verdict == "blocked":
            entry.block = (req.reason, req.match, req.matched)
            self.cache.put(key, entry)
            return response                              # the sinkhole answer
        self.cache.put(key, entry)
        return answers.cached_for(req.q, entry, now)     # our flags, the client's EDNS, its ID


class AnswerBlock(Link):
    """Blocks by the answer: every name in a CNAME chain, and A/AAAA addresses in IP lists."""

    def __init__(self, lists: Callable[[], ListSet], sinkhole: Sinkhole) -> None:
        self.lists, self.sinkhole = lists, sinkhole

    def resolve(self, req: Request) -> Result:
        return self._check(req, self.next.resolve(req))

    async def _check(self, req: Request, pending: Result) -> bytes:
        response = pending if isinstance(pending, bytes) else await pending
        if req.upstream is None:
            return response
        try:
            req.walked = wire.records(req.upstream)
        except wire.WireError:
            return response
        rrs = req.walked[2]
        lists, summary = self.lists(), []
        for rr in rrs:
            if rr.section != 0:
                continue
            hit, matched = None, ""
            if rr.rtype == wire.CNAME:
                target, _ = wire.read_name(req.upstream, rr.rdata_offset)
                summary.append(f"CNAME {target}")
                for name in (rr.name, target):
                    verdict = lists.check_name(name)
                    if verdict.blocked:
                        hit, matched, reason = verdict.block, name, "cname-list"
                        break
            elif rr.rtype in (wire.A, wire.AAAA) and rr.rdlength in (4, 16):
                raw = bytes(req.upstream[rr.rdata_offset:rr.rdata_offset + rr.rdlength])
                address = str(ipaddress.ip_address(raw))
                summary.append(address)
                hit, matched, reason = lists.ips.match_packed(raw), address, "address-list"
            if hit is not None and not self.sinkhole.enforces(hit):
                req.verdict, req.reason, req.match, req.matched = "audited", reason, hit, matched
            elif hit is not None:
                req.verdict, req.reason, req.match, req.matched = "blocked", reason, hit, matched
                req.summary = tuple(summary)
                return self.sinkhole.answer(req.q)
        req.summary = tuple(summary[:16])
        return response


class Upstream(Link):
    def __init__(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder

    def resolve(self, req: Request) -> Result:
        return self._forward(req)

    async def _forward(self, req: Request) -> bytes:
        req.upstream = await self.forwarder.resolve(req.q)
        return req.upstream or b""


def build_chain(record: Callable[[Request, bytes], None], lists: Callable[[], ListSet],
                cache: AnswerCache, forwarder: Forwarder, sinkhole: Sinkhole,
                ttl_limits: tuple[int, int, int]) -> Link:
    """The one place the order is decided:

    1. Recorder first, so every answer (blocked, cached, failed) is counted and logged once.
    2. BypassGuard before blocking, so the canaries get their specific answer and reason.
    3. NameBlock before the cache: a reload that blocks a name takes effect at once,
       whatever is cached for it.
    4. CacheLink before the network; it also stores answers, blocked-by-answer verdicts
       included (so a CNAME-cloaked name stays blocked from the cache), and serves stale.
    5. AnswerBlock between the cache and the upstream: it inspects only fresh upstream
       answers (CNAME chain names, A/AAAA addresses).
    6. Upstream last.
    """
    links = [Recorder(record), BypassGuard(sinkhole), NameBlock(lists, sinkhole),
             CacheLink(cache, sinkhole, ttl_limits), AnswerBlock(lists, sinkhole), Upstream(forwarder)]
    for link, following in zip(links, links[1:]):
        link.next = following
    return links[0]
