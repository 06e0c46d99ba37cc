"""The metrics sink: events counted with bounded labels only.

Query names, addresses and MACs never become labels (they are in the log); a device is
its inventory name, or `unknown`.
"""
from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge

from .events.event import PROBE_DEVICE, Event
from .policy.reasons import JUDGE

GATE_DECISIONS = ("tls.decision", "http.decision", "tcp.decision")
# Which events are egress attempts, and at which layer gcsguard saw them.
# bypass.direct_ip is not one: it flags a connection already counted (its flow or its drop).
LAYERS = {"dns.query": "dns", "dns.bypass": "dns", "egress.blocked": "ip", "egress.audit": "ip",
          "egress.flow": "ip", "tls.decision": "tls",
          "http.decision": "http", "tcp.decision": "tcp"}


def attempt_layer(type: str, action: str, reason: str, device_id: str) -> str | None:
    """The layer an egress attempt was decided at; None if the record is not one. Each
    attempt counts once: a connection through the gate at the gate's decision (not its
    redirected flow), a direct-IP one at its flow or drop (not the flag). Also used by the
    offline report, on log records."""
    if device_id == PROBE_DEVICE:
        return None                                       # gcsguard verify's own traffic
    if type == "dns.query" and action not in ("block", "log"):
        return None                                       # only vendor or bypass lookups
    if type == "egress.flow" and reason != "new":
        return None                                       # one per allowed connection
    if action == "redirect":
        return None                                       # handed to the gate: its decision is the attempt
    return LAYERS.get(type)


class MetricsSink:
    """Events counted by type and action, and egress attempts by bounded labels."""

    gather = 0.05       # seconds to let events gather: counting by the batch, not by the event

    def __init__(self, registry: CollectorRegistry) -> None:
        self.total = Counter("gcsguard_events_total", "Events by type and action", ["type", "action"],
                             registry=registry)
        self.attempts = Counter("gcsguard_egress_attempts_total",
                                "Egress attempts by layer (dns, ip, tls, http, tcp), what gcsguard "
                                "did, why, the vendor, and the device (inventory name or unknown)",
                                ["layer", "action", "reason", "vendor", "device"], registry=registry)
        # The gate's own figures, from the records it sends (it serves no /metrics itself).
        self.gate = Counter("gcsguard_gate_decisions_total", "The gate's decisions by layer (tls, "
                            "http, tcp), action and reason", ["layer", "action", "reason"],
                            registry=registry)
        self.gate_policy = Gauge("gcsguard_gate_policy_loaded_timestamp_seconds", "When the gate "
                                 "last loaded the daemon's policy (it follows every reload)",
                                 registry=registry)
        # Born at zero, as client_python advises for known label sets: a series created by
        # its first event shows Prometheus no increase, and the first refusal would not alert.
        for type in GATE_DECISIONS:
            for action in ("allow", "block", "log"):
                self.total.labels(type, action)

    async def handle(self, events: list[Event]) -> None:
        # Counted per batch: a labelled counter's lock and lookup per event cost more
        # than everything else this sink does.
        totals: dict[tuple[str, str], int] = {}
        attempts: dict[tuple[str, str, str, str, str], int] = {}
        gate: dict[tuple[str, str, str], int] = {}
        for event in events:
            key = (event.type, event.action)
            totals[key] = totals.get(key, 0) + 1
            layer = attempt_layer(event.type, event.action, event.reason, event.device_id)
            if layer:
                attempt = (layer, event.action, event.reason, event.vendor, event.device_name or "unknown")
                attempts[attempt] = attempts.get(attempt, 0) + 1
            if event.source != "gate":
                continue
            if event.type in GATE_DECISIONS:      # a reason outside the judge's words: "other"
                decision = (event.type.split(".")[0], event.action,
                            event.reason if event.reason in JUDGE else "other")
                gate[decision] = gate.get(decision, 0) + 1
            elif event.type == "gate.policy_loaded":
                self.gate_policy.set(time.time())
        for counter, counts in ((self.total, totals), (self.attempts, attempts), (self.gate, gate)):
            for labels, n in counts.items():
                counter.labels(*labels).inc(n)

    async def close(self) -> None:
        pass
