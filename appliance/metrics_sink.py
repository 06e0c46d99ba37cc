"""The metrics sink: events counted with bounded labels only.

Query names, addresses and MACs never become labels (they are in the log); a device is
its inventory name, or `unknown`.
"""
from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter

from .events.event import PROBE_DEVICE, Event

# Which events are egress attempts, and at which layer gcsguard saw them.
LAYERS = {"dns.query": "dns", "dns.bypass": "dns", "egress.blocked": "ip", "egress.audit": "ip",
          "bypass.direct_ip": "ip", "egress.flow": "ip", "tls.decision": "tls",
          "http.decision": "http", "tcp.decision": "tcp"}


def is_attempt(event: Event) -> bool:
    if event.device_id == PROBE_DEVICE:
        return False                                      # gcsguard verify's own traffic
    if event.type == "dns.query":
        return event.action in ("block", "log")          # a vendor or bypass lookup
    if event.type == "egress.flow":
        return event.reason == "new"                      # one per allowed connection
    return event.type in LAYERS


async def count_events(queue: "asyncio.Queue[Event]", registry: CollectorRegistry) -> None:
    total = Counter("gcsguard_events_total", "Events by type and action", ["type", "action"],
                    registry=registry)
    attempts = Counter("gcsguard_egress_attempts_total",
                       "Egress attempts by layer (dns, ip, tls, http, tcp), what gcsguard did, "
                       "why, the vendor, and the device (inventory name or unknown)",
                       ["layer", "action", "reason", "vendor", "device"], registry=registry)
    while True:
        event = await queue.get()
        total.labels(event.type, event.action).inc()
        if is_attempt(event):
            attempts.labels(LAYERS[event.type], event.action, event.reason, event.vendor,
                            event.device_name or "unknown").inc()
