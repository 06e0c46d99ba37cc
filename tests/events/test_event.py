import json

import pytest

from appliance.events.event import SCHEMA_VERSION, Event, Stamp

STAMP = Stamp(time="2026-11-26T06:48:14.123456Z", mono_ns=42, boot_id="b", clock="unsynced")


def test_json_round_trip_keeps_every_field():
    e = Event(type="dns.query", stamp=STAMP, action="block", reason="vendor-list",
              device_id="mac:aa:bb:cc:dd:ee:01", device_name="ctl-03", device_ip="10.0.0.23",
              name="mydjiflight.dji.com", vendor="DJI", category="vendor", seq=7,
              details={"qtype": "A", "list": "dji.list:12"})
    d = json.loads(e.to_json())
    assert d["schema_version"] == SCHEMA_VERSION and d["clock"] == "unsynced"
    assert d["time"] == "2026-11-26T06:48:14.123456Z" and d["seq"] == 7
    assert Event.from_dict(d) == e


def test_empty_optional_fields_are_left_out():
    d = Event(type="appliance.started", stamp=STAMP).to_dict()
    assert "vendor" not in d and "details" not in d and d["action"] == "info"


def test_contract_is_enforced():
    with pytest.raises(ValueError, match="action"):
        Event(type="x.y", stamp=STAMP, action="maybe")
    with pytest.raises(ValueError, match="type"):
        Event(type="has space", stamp=STAMP)
    good = Event(type="x.y", stamp=STAMP).to_dict()
    with pytest.raises(ValueError, match="schema_version"):
        Event.from_dict({**good, "schema_version": 99})
    with pytest.raises(ValueError, match="'seq' must be an integer"):
        Event.from_dict({**good, "seq": "1"})
    with pytest.raises(ValueError, match="missing field 'time'"):
        Event.from_dict({k: v for k, v in good.items() if k != "time"})
