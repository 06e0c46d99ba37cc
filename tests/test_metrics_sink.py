import asyncio

from prometheus_client import CollectorRegistry

from appliance.events.clock import Clock
from appliance.events.event import Event
from appliance.metrics_sink import MetricsSink


def test_attempts_are_counted_with_bounded_labels():
    registry, clock = CollectorRegistry(), Clock()
    events = [Event("dns.query", clock.stamp(), action="allow", reason="forwarded", name="a.example"),
              Event("dns.query", clock.stamp(), action="block", reason="name-list", vendor="DJI",
                    name="mydjiflight.dji.com", device_name="ctl-03"),
              Event("tls.decision", clock.stamp(), action="block", reason="sni-list", vendor="DJI",
                    device_ip="10.70.0.9"),
              Event("egress.flow", clock.stamp(), action="allow", reason="new"),
              Event("egress.flow", clock.stamp(), action="allow", reason="end"),
              Event("config.loaded", clock.stamp())]

    asyncio.run(MetricsSink(registry).handle(events))

    def attempts(**labels):
        return registry.get_sample_value("gcsguard_egress_attempts_total", labels) or 0
    assert attempts(layer="dns", action="block", reason="name-list", vendor="DJI", device="ctl-03") == 1
    assert attempts(layer="tls", action="block", reason="sni-list", vendor="DJI", device="unknown") == 1
    assert attempts(layer="ip", action="allow", reason="new", vendor="", device="unknown") == 1
    assert attempts(layer="ip", action="allow", reason="end", vendor="", device="unknown") == 0
    assert attempts(layer="dns", action="allow", reason="forwarded", vendor="", device="unknown") == 0
    assert registry.get_sample_value("gcsguard_events_total", {"type": "config.loaded", "action": "info"}) == 1
    names = {s.labels.get("device") for m in registry.collect() for s in m.samples}
    assert "10.70.0.9" not in names and "mydjiflight.dji.com" not in str(list(registry.collect()))


def test_one_attempt_through_the_gate_is_counted_once():
    """A vendor SNI sent to an address the device never looked up: its flow is handed to the
    gate (redirect), flagged direct-IP, and refused by the gate: one attempt, at the gate."""
    registry, clock = CollectorRegistry(), Clock()
    common = dict(vendor="DJI", device_name="ctl-03")
    events = [Event("egress.flow", clock.stamp(), action="redirect", reason="new", **common),
              Event("bypass.direct_ip", clock.stamp(), action="redirect", reason="direct-ip", **common),
              Event("tls.decision", clock.stamp(), action="block", reason="sni-list", **common),
              Event("egress.flow", clock.stamp(), action="block", reason="end", **common),
              # control: a blocked direct-IP drop counts once, at the drop, not at its flag
              Event("egress.blocked", clock.stamp(), action="block", reason="vendor-address", **common),
              Event("bypass.direct_ip", clock.stamp(), action="block", reason="direct-ip", **common)]
    asyncio.run(MetricsSink(registry).handle(events))
    counted = {tuple(sorted(s.labels.items())): s.value for m in registry.collect() for s in m.samples
               if s.name == "gcsguard_egress_attempts_total"}
    assert sum(counted.values()) == 2, counted
    assert registry.get_sample_value("gcsguard_egress_attempts_total", {
        "layer": "tls", "action": "block", "reason": "sni-list", "vendor": "DJI", "device": "ctl-03"}) == 1


def test_the_gate_decisions_are_counted_with_the_judges_reasons_only():
    registry, clock = CollectorRegistry(), Clock()
    events = [Event("tls.decision", clock.stamp(), action="block", reason="sni-list", source="gate"),
              Event("http.decision", clock.stamp(), action="allow", reason="host-allowed", source="gate"),
              Event("tls.decision", clock.stamp(), action="block", reason="made-up-7", source="gate"),
              Event("tls.decision", clock.stamp(), action="block", reason="sni-list"),   # not the gate's
              Event("gate.policy_loaded", clock.stamp(), reason="load", source="gate")]
    asyncio.run(MetricsSink(registry).handle(events))

    def decisions(layer, action, reason):
        return registry.get_sample_value("gcsguard_gate_decisions_total",
                                         {"layer": layer, "action": action, "reason": reason})
    assert decisions("tls", "block", "sni-list") == 1 and decisions("http", "allow", "host-allowed") == 1
    assert decisions("tls", "block", "other") == 1 and decisions("tls", "block", "made-up-7") is None
    assert registry.get_sample_value("gcsguard_gate_policy_loaded_timestamp_seconds") > 0
