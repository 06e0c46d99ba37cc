"""The resolver as one part of the appliance: built from config, recording every query.

Recording is where a query becomes an `Event` (device, name, type, verdict, vendor,
list entry, answer summary, latency) and metrics (queries by verdict and vendor,
latency). Both use pre-bound metric children: this runs once per query.
"""
from __future__ import annotations

import asyncio
import time
from typing import Callable

import dnslib
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..config.schema import DnsSection
from ..events.bus import EventBus
from ..lists import ListSet
from .cache import AnswerCache
from .chain import Request, Sinkhole, build_chain
from .ratelimit import RateLimiter
from .server import DnsServer, Frontend
from .upstream import Forwarder, parse_servers

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5)
BLOCKING = ("blocked", "bypass")


def qtype_name(qtype: int) -> str:
    return dnslib.QTYPE.get(qtype, f"TYPE{qtype}")


class QueryRecorder:
    def __init__(self, bus: EventBus, registry: CollectorRegistry, log_queries: str) -> None:
        self.bus, self.log_all = bus, log_queries == "all"
        self._queries = Counter("gcsguard_dns_queries_total", "DNS queries by verdict and vendor",
                                ["verdict", "vendor"], registry=registry)
        self._latency = Histogram("gcsguard_dns_query_duration_seconds",
                                  "Time from query to answer", ["verdict"], buckets=LATENCY_BUCKETS,
                                  registry=registry)
        self._children: dict[tuple[str, str], tuple] = {}

    def __call__(self, req: Request, response: bytes) -> None:
        elapsed = (time.perf_counter_ns() - req.start_ns) / 1e9
        match = req.match
        vendor = match.source.vendor if match else ""
        key = (req.verdict, vendor)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self._queries.labels(req.verdict, vendor),
                                              self._latency.labels(req.verdict))
        children[0].inc()
        children[1].observe(elapsed)
        blocking = req.verdict in BLOCKING
        if not (self.log_all or blocking):
            return
        q = req.q
        details = {"qtype": qtype_name(q.qtype), "verdict": req.verdict,
                   "rcode": response[3] & 0xF if len(response) > 3 else None,
                   "proto": "tcp" if req.tcp else "udp", "latency_us": int(elapsed * 1e6)}
        if match:
            details.update(list=match.where, entry=match.entry)
        if req.matched:
            details["matched"] = req.matched
        if req.summary:
            details["answer"] = list(req.summary)
        self.bus.emit("dns.query", action="block" if blocking else "allow", reason=req.reason,
                      device_ip=req.client, name=q.name, vendor=vendor,
                      category=match.source.category if match else "", details=details)


class DnsService:
    def __init__(self, config: DnsSection, lists: Callable[[], ListSet], bus: EventBus,
                 registry: CollectorRegistry) -> None:
        self.config, self.bus = config, bus
        self.cache = AnswerCache(config.cache_size, config.serve_stale_for)
        Gauge("gcsguard_dns_cache_entries", "Answers in the DNS cache",
              registry=registry).set_function(lambda: len(self.cache))
        self.forwarder = Forwarder(parse_servers(config.upstreams), config.upstream_timeout, registry)
        self.limiter = RateLimiter(config.rate_limit, config.rate_burst)
        chain = build_chain(QueryRecorder(bus, registry, config.log_queries), lists, self.cache,
                            self.forwarder, Sinkhole(config.sinkhole, config.sinkhole_ttl),
                            (config.min_ttl, config.max_ttl, config.negative_max_ttl))
        self.frontend = Frontend(chain, list(config.clients), config.refuse, self.limiter, registry)
        self.server = DnsServer(self.frontend, config.listen, tcp_idle=config.tcp_idle_timeout,
                                tcp_max=config.tcp_max_connections)

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
