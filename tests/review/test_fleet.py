"""The isolation report across stations: one row per station with its own claim, each
station's log checked with its own key, the exit code the worst claim's."""
import json
import subprocess
import sys

from prometheus_client import CollectorRegistry

from appliance.events.event import Event
from appliance.evlog import signing
from appliance.evlog.writer import LogMetrics, LogWriter


def station_log(directory, station, clock, fake_time):
    key, pub = str(directory / "k.key"), str(directory / "k.pub")
    signing.generate_key(key, pub)
    w = LogWriter(str(directory / "log"), signing.load_private(key), station, clock,
                  LogMetrics(CollectorRegistry()))
    w.open()
    for name in ("mydjiflight.dji.com", "active.dji.com"):
        w.write([Event(type="dns.query", stamp=clock.stamp(), action="block", reason="name-list",
                       device_id="mac:aa:00:00:00:00:01", device_ip="10.0.0.9", vendor="DJI", name=name)])
        fake_time.advance(600)
    w.close()
    return str(directory / "log"), pub


def test_one_row_per_station_each_with_its_claim(tmp_path, clock, fake_time):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    good, good_pub = station_log(tmp_path / "a", "district-1", clock, fake_time)
    cut, cut_pub = station_log(tmp_path / "b", "district-2", clock, fake_time)
    path = next((tmp_path / "b" / "log").glob("events-*.jsonl"))
    lines = path.read_text().splitlines(keepends=True)
    record = json.loads(lines[1])
    record["name"] = "maps.example.org"                          # rewritten after the fact
    lines[1] = json.dumps(record, separators=(",", ":")) + "\n"
    path.write_text("".join(lines))
    out = tmp_path / "fleet"
    run = subprocess.run([sys.executable, "-m", "appliance", "review", "report", good, cut,
                          "--pubkey", good_pub, "--pubkey", cut_pub, "--out", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 3, run.stdout + run.stderr            # the worst: cannot be made
    lines = run.stdout.splitlines()
    assert lines[0].startswith("district-1  The claim holds"), run.stdout
    assert lines[1].startswith("district-2  The claim cannot be made") and "log BROKEN" in lines[1]
    index = (out / "index.html").read_text()
    assert "district-1.html" in index and "district-2.html" in index
    assert "The claim holds" in (out / "district-1.html").read_text()
    # control: the same station alone holds, exit 0
    alone = subprocess.run([sys.executable, "-m", "appliance", "review", "report", good,
                            "--pubkey", good_pub, "--out", str(tmp_path / "one.html")],
                           capture_output=True, text=True)
    assert alone.returncode == 0, alone.stdout + alone.stderr
