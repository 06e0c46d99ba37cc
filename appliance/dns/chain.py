"""The resolver's policy: a chain of small links, assembled in `build_chain` only.

Each link answers, or passes the request on to the next one and may qualify what comes
back. What a link says is a small immutable `Answer` (the response bytes, the verdict,
the reason, the match); the `Request` is only the question and who asked, and no link
writes into it. Links that need the network return an awaitable instead, so blocked
names and cache hits are answered without creating a task.
"""
from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, NamedTuple, Union

from ..lists import Match
from ..policy import Judge
from . import answers, wire
from .aliases import Aliases
from .cache import AnswerCache, entry_from_response
from .upstream import Forwarder

# Names that tell clients and OSes whether private DNS or relays may bypass us.
CANARIES = {"use-application-dns.net": "nxdomain",     # Firefox: do not enable DoH
            "mask.icloud.com": "nxdomain",             # iCloud Private Relay off
            "mask-h2.icloud.com": "nxdomain",
            "resolver.arpa": "nodata"}                 # DDR (RFC 9462): no designated resolver


@dataclass(frozen=True, slots=True)
class Request:
    q: wire.Query
    client: str
    tcp: bool
    start_ns: int = field(default_factory=time.perf_counter_ns)


class Answer(NamedTuple):
    response: bytes
    verdict: str = "forwarded"   # blocked | bypass | audited | cached | forwarded | stale | servfail
    reason: str = "forwarded"    # bounded: name-list | not-allowed | cname-list | address-list | ...
    match: Match | None = None
    matched: str = ""            # the CNAME target or address that matched, for the record
    summary: tuple[str, ...] = ()  # addresses and CNAME targets of the answer
    upstream: bytes | None = None  # the upstream's reply (None: every upstream failed)
    walked: tuple | None = None  # wire.records(upstream), read once by AnswerBlock


Result = Union[Answer, Awaitable[Answer]]


class Link:
    next: "Link"

    def resolve(self, req: Request) -> Result:
        raise NotImplementedError


@dataclass
class Sinkhole:
    mode: str    # nxdomain | nodata | null
    ttl: int

    def answer(self, q: wire.Query, mode: str | None = None) -> bytes:
        return answers.sinkhole_for(q, mode or self.mode, self.ttl)


def then(result: Result, qualify: Callable[[Answer], Answer]) -> Result:
    """`qualify` applied to an answer now, or once it comes."""
    if isinstance(result, Answer):
        return qualify(result)

    async def later() -> Answer:
        return qualify(await result)
    return later()


class Recorder:
    """First: sees every answer, however it was made, hands it to `record`, and returns
    the bytes for the client."""

    def __init__(self, record: Callable[[Request, Answer], None]) -> None:
        self.record = record

    def resolve(self, req: Request) -> bytes | Awaitable[bytes]:
        result = self.next.resolve(req)
        if isinstance(result, Answer):
            self.record(req, result)
            return result.response
        return self._later(req, result)

    async def _later(self, req: Request, pending: Awaitable[Answer]) -> bytes:
        answer = await pending
        self.record(req, answer)
        return answer.response


class BypassGuard(Link):
    def __init__(self, sinkhole: Sinkhole) -> None:
        self.sinkhole = sinkhole

    def resolve(self, req: Request) -> Result:
        name = req.q.name
        mode = CANARIES.get(name) or ("nodata" if name.endswith(".resolver.arpa") else None)
        if mode is None:
            return self.next.resolve(req)
        return Answer(self.sinkhole.answer(req.q, mode), "bypass", "bypass-canary")


class NameBlock(Link):
    """The judge's word on the query name: listed names (and every name under one) and, in
    isolate, every name off the allowlist are answered here, with no upstream query.
    Verdicts are memoized per judge (a reload brings a new one)."""

    def __init__(self, judge: Callable[[], Judge], sinkhole: Sinkhole, memo_size: int = 65536) -> None:
        self.judge, self.sinkhole, self.memo_size = judge, sinkhole, memo_size
        self._memo: dict = {}
        self._memo_for: Judge | None = None

    def resolve(self, req: Request) -> Result:
        judge = self.judge()
        if judge is not self._memo_for or len(self._memo) >= self.memo_size:
            self._memo, self._memo_for = {}, judge          # new policy (reload) or full
        name = req.q.name
        verdict = self._memo.get(name)
        if verdict is None:
            verdict = judge.name(name)
            if verdict.match is not None or verdict.reason == "unlisted":
                self._memo[name] = verdict                  # isolate's word waits on aliases
        if verdict.action == "allow":
            return self.next.resolve(req)
        if verdict.action == "audit":                       # resolved, and said to be a vendor's
            return then(self.next.resolve(req), lambda answer: answer if answer.verdict in (
                "blocked", "audited", "servfail") else answer._replace(
                verdict="audited", reason=verdict.reason, match=verdict.match))
        return Answer(self.sinkhole.answer(req.q), "blocked", verdict.reason, verdict.match)


class CacheLink(Link):
    """Answers from the cache; stores what comes back; serves stale when upstreams fail."""

    def __init__(self, cache: AnswerCache, sinkhole: Sinkhole, ttl_limits: tuple[int, int, int],
                 stale_answer_ttl: int = 30, clock: Callable[[], float] = time.monotonic) -> None:
        self.cache, self.sinkhole, self.ttl_limits = cache, sinkhole, ttl_limits
        self.stale_answer_ttl, self.clock = stale_answer_ttl, clock

    @staticmethod
    def key(q: wire.Query) -> tuple:
        return q.name, q.qtype, q.qclass, q.do, bool(q.flags & wire.CD)

    def _serve(self, q: wire.Query, entry, now: float, stale: bool) -> Answer:
        if entry.block is not None:
            reason, match, matched = entry.block
            return Answer(self.sinkhole.answer(q), "blocked", reason, match, matched, entry.summary)
        verdict = "stale" if stale else "cached"
        return Answer(answers.cached_for(q, entry, now, self.stale_answer_ttl if stale else None),
                      verdict, verdict, summary=entry.summary)

    def resolve(self, req: Request) -> Result:
        now = self.clock()
        entry = self.cache.get(self.key(req.q), now)
        if entry is not None:
            return self._serve(req.q, entry, now, stale=False)
        return self._miss(req, self.next.resolve(req))

    async def _miss(self, req: Request, pending: Result) -> Answer:
        answer = pending if isinstance(pending, Answer) else await pending
        now, q = self.clock(), req.q
        key = self.key(q)
        if answer.upstream is None:                      # every upstream failed
            stale = self.cache.stale(key, now)
            if stale is not None:
                return self._serve(q, stale, now, stale=True)
            return Answer(answers.error(q, wire.SERVFAIL), "servfail", "servfail")
        try:
            entry = entry_from_response(answer.upstream, now, *self.ttl_limits, walked=answer.walked)
        except wire.WireError:
            return Answer(answers.error(q, wire.SERVFAIL), "servfail", "servfail")
        entry.summary = answer.summary
        if answer.verdict == "blocked":
            entry.block = (answer.reason, answer.match, answer.matched)
            self.cache.put(key, entry)
            return answer                                # the sinkhole answer
        self.cache.put(key, entry)
        return answer._replace(response=answers.cached_for(q, entry, now))   # our flags, the
                                                         # client's EDNS, its ID


class AnswerBlock(Link):
    """Blocks by the answer: every name in a CNAME chain, and A/AAAA addresses in IP lists.
    In isolate every answer that gets here is an allowlisted name's: the CNAME targets it
    names become resolvable aliases (clients may look them up in turn)."""

    def __init__(self, judge: Callable[[], Judge], sinkhole: Sinkhole, aliases: Aliases) -> None:
        self.judge, self.sinkhole, self.aliases = judge, sinkhole, aliases

    def resolve(self, req: Request) -> Result:
        return self._check(req, self.next.resolve(req))

    async def _check(self, req: Request, pending: Result) -> Answer:
        answer = pending if isinstance(pending, Answer) else await pending
        raw = answer.upstream
        if raw is None:
            return answer
        try:
            walked = wire.records(raw)
        except wire.WireError:
            return answer
        judge, summary, hit, targets, ttl = self.judge(), [], None, [], None
        for rr in walked[2]:
            if rr.section != 0:
                continue
            verdict, matched = None, ""
            if rr.rtype == wire.CNAME:
                target, _ = wire.read_name(raw, rr.rdata_offset)
                summary.append(f"CNAME {target}")
                targets.append(target)
                ttl = rr.ttl if ttl is None else min(ttl, rr.ttl)
                for name in (rr.name, target):
                    verdict, matched = judge.chain_name(name), name
                    if verdict:
                        break
            elif rr.rtype in (wire.A, wire.AAAA) and rr.rdlength in (4, 16):
                address = bytes(raw[rr.rdata_offset:rr.rdata_offset + rr.rdlength])
                matched = str(ipaddress.ip_address(address))
                summary.append(matched)
                verdict = judge.answer_address(address)
            if verdict and (hit is None or (verdict.block and not hit[0].block)):
                hit = (verdict, matched)
        seen = tuple(summary[:16])               # every address, for the record and the learner
        if hit is None:
            if judge.mode == "isolate":
                self.aliases.add(targets, ttl or 0)
            return answer._replace(summary=seen, walked=walked)
        verdict, matched = hit
        if not verdict.block:
            return answer._replace(verdict="audited", reason=verdict.reason, match=verdict.match,
                                   matched=matched, summary=seen, walked=walked)
        return Answer(self.sinkhole.answer(req.q), "blocked", verdict.reason, verdict.match, matched,
                      seen, raw, walked)


class Upstream(Link):
    def __init__(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder

    def resolve(self, req: Request) -> Result:
        return self._forward(req)

    async def _forward(self, req: Request) -> Answer:
        raw = await self.forwarder.resolve(req.q)
        return Answer(raw or b"", upstream=raw)


def build_chain(record: Callable[[Request, Answer], None], judge: Callable[[], Judge],
                cache: AnswerCache, forwarder: Forwarder, sinkhole: Sinkhole,
                ttl_limits: tuple[int, int, int], aliases: Aliases) -> Recorder:
    """The one place the order is decided:

    1. Recorder first, so every answer (blocked, cached, failed) is counted and logged once.
    2. BypassGuard before blocking, so the canaries get their specific answer and reason.
    3. NameBlock before the cache: a reload that blocks a name takes effect at once,
       whatever is cached for it; what the judge refuses (a listed name, in isolate any
       name off the allowlist) never reaches the cache's miss path, so never an upstream.
    4. CacheLink before the network; it also stores answers, blocked-by-answer verdicts
       included (so a CNAME-cloaked name stays blocked from the cache), and serves stale.
    5. AnswerBlock between the cache and the upstream: it inspects only fresh upstream
       answers (CNAME chain names, A/AAAA addresses).
    6. Upstream last.
    """
    links = [Recorder(record), BypassGuard(sinkhole), NameBlock(judge, sinkhole),
             CacheLink(cache, sinkhole, ttl_limits), AnswerBlock(judge, sinkhole, aliases),
             Upstream(forwarder)]
    for link, following in zip(links, links[1:]):
        link.next = following
    return links[0]
