"""The holes a log records of itself, as the verifier lists them (pure)."""
from appliance.evlog.holes import Holes


def test_stops_crashes_and_losses_are_listed_and_nothing_else():
    h = Holes()
    for kind, record in (("appliance.stopped", {"time": "T1"}), ("dns.query", {"time": "T2"}),
                         ("appliance.started", {"time": "T3"}),
                         ("appliance.unclean_stop", {"time": "T5", "details": {"last_n": 9, "last_time": "T4"}}),
                         ("events.dropped", {"time": "T6", "details": {"dropped_by_sink": {"log": 3}}})):
        if h.wants(kind):
            h.see(kind, record, "f:1")
    assert h.gaps == ["T1 to T3: the appliance was stopped",
                      "T4 to T5: the appliance ended uncleanly after record 9 (f:1)"]
    assert h.losses == ["f:1: events dropped before the sinks at T6: {'log': 3}"]
    assert not h.wants("dns.query")
