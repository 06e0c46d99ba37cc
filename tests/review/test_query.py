import csv
import io
import json

from appliance.evlog.writer import LogMetrics, LogWriter
from appliance.events.event import Event
from appliance.review.output import EVENT_COLUMNS, event_row, write
from appliance.review.query import Filter, records, summarize
from prometheus_client import CollectorRegistry


def make_log(directory, key, clock, fake_time):
    w = LogWriter(str(directory), key, "t", clock, LogMetrics(CollectorRegistry()))
    w.open()
    rows = [("mac:aa:00:00:00:00:01", "ctl-01", "DJI", "block", "mydjiflight.dji.com", "dns.query"),
            ("mac:aa:00:00:00:00:01", "ctl-01", "", "allow", "maps.example.org", "dns.query"),
            ("mac:aa:00:00:00:00:02", "", "Bugly", "block", "android.bugly.qq.com", "egress.blocked"),
            ("mac:aa:00:00:00:00:02", "", "DJI", "block", "active.dji.com", "dns.query")]
    for device, name_, vendor, action, name, type_ in rows:
        w.write([Event(type=type_, stamp=clock.stamp(), action=action, device_id=device,
                       device_name=name_, device_ip="10.0.0.9", vendor=vendor, name=name)])
        fake_time.advance(1800)
    w.close()


def test_filters(tmp_path, keypair, clock, fake_time):
    start = fake_time.now
    make_log(tmp_path, keypair[0], clock, fake_time)
    rs = list(records(str(tmp_path)))
    pick = lambda **kw: [r["name"] for r in rs if Filter(**kw).matches(r)]
    assert pick(vendor="dji") == ["mydjiflight.dji.com", "active.dji.com"]
    assert pick(device="ctl-01") == ["mydjiflight.dji.com", "maps.example.org"]
    assert pick(device="mac:aa:00:00:00:00:02", action="block") == ["android.bugly.qq.com", "active.dji.com"]
    assert pick(name="*.dji.com") == ["mydjiflight.dji.com", "active.dji.com"]
    assert pick(type="egress.") == ["android.bugly.qq.com"]
    assert pick(since=start + 1800, until=start + 5400) == ["maps.example.org", "android.bugly.qq.com"]
    assert len(pick()) == 4


def test_summaries_and_formats(tmp_path, keypair, clock, fake_time):
    make_log(tmp_path, keypair[0], clock, fake_time)
    rs = list(records(str(tmp_path)))
    by_vendor = summarize(rs, "vendor")
    assert {r["vendor"]: (r["total"], r["block"]) for r in by_vendor} == {
        "(none)": (1, 0), "Bugly": (1, 1), "DJI": (2, 2)}
    by_device = summarize(rs, "device")
    assert [r["device"] for r in by_device] == ["ctl-01", "mac:aa:00:00:00:00:02"]
    assert sum(r["total"] for r in summarize(rs, "hour")) == 4
    ip_only = [{"time": "2026-11-26T07:00:00Z", "action": "block", "device_ip": "10.0.0.9"}]
    assert summarize(ip_only, "device")[0]["device"] == "10.0.0.9"      # no MAC known yet
    out = io.StringIO()
    write(map(event_row, rs), "csv", out, EVENT_COLUMNS)
    parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert parsed[0]["device"] == "ctl-01" and parsed[2]["vendor"] == "Bugly"
    out = io.StringIO()
    write(rs, "json", out)
    assert [json.loads(l)["n"] for l in out.getvalue().splitlines()] == [1, 2, 3, 4]
    out = io.StringIO()
    write(map(event_row, rs), "table", out, EVENT_COLUMNS)
    assert out.getvalue().splitlines()[0].split() == [c.upper() for c in EVENT_COLUMNS]


def test_a_collectors_copy_is_read_once_per_record(tmp_path, keypair, clock, fake_time):
    from appliance.evlog import chain
    make_log(tmp_path, keypair[0], clock, fake_time)
    path = tmp_path / chain.log_files(str(tmp_path))[0]
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3] + lines[1:3] + lines[3:]))       # records 2..3 sent twice
    names = lambda **kw: [r.get("name") for r in records(str(tmp_path), **kw) if r["type"] == "dns.query"]  # noqa: E731
    assert names(copy=True) == ["mydjiflight.dji.com", "maps.example.org", "active.dji.com"]
    assert len(names()) == 4                 # read as a station's own log, every line is a record
