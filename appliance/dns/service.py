"""The resolver as one part of the appliance: built from config, recording every query.

Recording is where a query becomes an `Event` (device, name, type, verdict, vendor,
list entry, answer summary, latency) and metrics (queries by verdict and vendor,
latency). Both use pre-bound metric children: this runs once per query.
"""
from __future__ import annotations

import asyncio
import bisect
import time
from typing import Callable

import dnslib
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from ..config.schema import DnsSection
from ..events.bus import EventBus
from ..policy import Judge
from .aliases import Aliases
from .cache import AnswerCache
from .chain import Answer, Request, Sinkhole, build_chain
from .ratelimit import RateLimiter
from .server import DnsServer, Frontend
from .upstream import Forwarder, parse_servers

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5)
BLOCKING = ("blocked", "bypass")
NOTABLE = (*BLOCKING, "audited")      # logged even with log_queries = "blocked"


REFUSED_HEAD = 128           # bytes of a refused message kept in its record
LINE_LOOKUP_MAX = 1 << 20     # bytes: find the line of a match only in lists this small


def list_position(match) -> str:
    """'file:line' for curated lists; just 'file' for huge ones (a line search per new name
    in a million-line list would cost milliseconds: `gcsguard lists test` finds it)."""
    source = match.source
    return match.where if len(source.raw) <= LINE_LOOKUP_MAX else source.path


def qtype_name(qtype: int) -> str:
    return dnslib.QTYPE.get(qtype, f"TYPE{qtype}")


class QueryMetrics:
    """Query counts and latency kept as plain numbers and exported at scrape time.

    prometheus_client's locked counters cost ~2 µs per query on this path; a
    collector reading these numbers is the client_python pattern for outside state."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.latency: dict[str, list] = {}      # verdict -> [bucket counts..., sum]
        registry.register(self)

    def observe(self, verdict: str, vendor: str, seconds: float) -> None:
        key = (verdict, vendor)
        self.counts[key] = self.counts.get(key, 0) + 1
        h = self.latency.get(verdict)
        if h is None:
            h = self.latency[verdict] = [0] * (len(LATENCY_BUCKETS) + 2)
        h[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        h[-1] += seconds

    def describe(self):
        return []

    def collect(self):
        queries = CounterMetricFamily("gcsguard_dns_queries", "DNS queries by verdict and vendor",
                                      labels=["verdict", "vendor"])
        for (verdict, vendor), n in sorted(self.counts.items()):
            queries.add_metric([verdict, vendor], n)
        latency = HistogramMetricFamily("gcsguard_dns_query_duration_seconds",
                                        "Time from query to answer", labels=["verdict"])
        for verdict, h in sorted(self.latency.items()):
            running, buckets = 0, []
            for bound, n in zip((*LATENCY_BUCKETS, float("inf")), h[:-1]):
                running += n
                buckets.append((str(bound) if bound != float("inf") else "+Inf", running))
            latency.add_metric([verdict], buckets, h[-1])
        return [queries, latency]


class QueryRecorder:
    def __init__(self, bus: EventBus, registry: CollectorRegistry, log_queries: str,
                 observe: Callable[[Request, Answer], None] | None = None,
                 identify: Callable[[str], tuple[str, str]] | None = None) -> None:
        self.bus, self.log_all, self.log_none = bus, log_queries == "all", log_queries == "off"
        self.metrics = QueryMetrics(registry)
        self.observe, self.identify = observe, identify

    def __call__(self, req: Request, answer: Answer) -> None:
        if self.observe is not None:     # before the answer leaves: sets learn its addresses first
            self.observe(req, answer)
        elapsed = (time.perf_counter_ns() - req.start_ns) / 1e9
        match, verdict, response = answer.match, answer.verdict, answer.response
        vendor = match.source.vendor if match else ""
        self.metrics.observe(verdict, vendor, elapsed)
        blocking = verdict in BLOCKING
        if self.log_none or not (self.log_all or verdict in NOTABLE):
            return
        q = req.q
        details = {"qtype": qtype_name(q.qtype), "verdict": verdict,
                   "rcode": response[3] & 0xF if len(response) > 3 else None,
                   "proto": "tcp" if req.tcp else "udp", "latency_us": int(elapsed * 1e6)}
        if match:
            details.update(list=list_position(match), entry=match.entry)
        if answer.matched:
            details["matched"] = answer.matched
        if answer.summary:
            details["answer"] = list(answer.summary)
        device_id, device_name = self.identify(req.client) if self.identify else ("", "")
        self.bus.emit("dns.query", action="block" if blocking else
                      "log" if verdict == "audited" else "allow", reason=answer.reason,
                      device_id=device_id, device_name=device_name, device_ip=req.client,
                      name=q.name, vendor=vendor, category=match.source.category if match else "",
                      details=details)


    def refused(self, kind: str, data: bytes, client: str, tcp: bool, reply: bytes | None) -> None:
        """A message the front door would not resolve: its first bytes, escaped, for review."""
        device_id, device_name = self.identify(client) if self.identify else ("", "")
        self.bus.emit("dns.refused", action="block", reason=kind, device_id=device_id,
                      device_name=device_name, device_ip=client, details={
                          "proto": "tcp" if tcp else "udp", "bytes": len(data),
                          "head_hex": data[:REFUSED_HEAD].hex(),
                          "rcode": reply[3] & 0xF if reply else None})


class DnsService:
    def __init__(self, config: DnsSection, judge: Callable[[], Judge], bus: EventBus,
                 registry: CollectorRegistry,
                 observe: Callable[[Request, Answer], None] | None = None,
                 identify: Callable[[str], tuple[str, str]] | None = None) -> None:
        self.bus = bus
        self.cache = AnswerCache(config.cache_size, config.serve_stale_for)
        self.aliases = Aliases()
        Gauge("gcsguard_dns_cache_entries", "Answers in the DNS cache",
              registry=registry).set_function(lambda: len(self.cache))
        self.forwarder = Forwarder(parse_servers(config.upstreams), config.upstream_timeout, registry)
        self.limiter = RateLimiter(config.rate_limit, config.rate_burst)
        recorder = QueryRecorder(bus, registry, config.log_queries, observe, identify)
        chain = build_chain(recorder, judge, self.cache, self.forwarder,
                            Sinkhole(config.sinkhole, config.sinkhole_ttl),
                            (config.min_ttl, config.max_ttl, config.negative_max_ttl), self.aliases)
        self.frontend = Frontend(chain, list(config.clients), config.refuse, self.limiter, registry,
                                 recorder.refused)
        self.server = DnsServer(self.frontend, config.listen, tcp_idle=config.tcp_idle_timeout,
                                tcp_max=config.tcp_max_connections,
                                tcp_per_client=config.tcp_max_per_client, registry=registry)

    async def start(self) -> None:
        await self.server.start()

    def lists_changed(self) -> None:
        """After a reload: cached answers may carry verdicts of the old lists."""
        self.cache.clear()

    async def report_rate_limits(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            limited = self.limiter.take_summary()
            if limited:
                top = dict(sorted(limited.items(), key=lambda kv: -kv[1])[:20])
                self.bus.emit("dns.rate_limited", action="block", reason="rate-limit", details={
                    "queries": sum(limited.values()), "clients": len(limited), "top": top})

    def close(self) -> None:
        self.server.close()
