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
