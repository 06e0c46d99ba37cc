"""Three stations watched centrally by the real engines (Prometheus, a federating Prometheus,
Alertmanager, rsyslog): alerts name their station and only it, the fleet's panels have a row
per station, and every station's signed log is copied off the box without loss."""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families

from appliance.evlog import chain
from appliance.lab import topology
from appliance.lab.fleet import Fleet
from appliance.lab.internet import VENDOR
from appliance.ship.rsyslog import RELP_WINDOW
from tests.dashboards.test_dashboards import dashboards, misbehave, substitute
from tests.dashboards.test_metrics_doc import documented_families
from tests.network.test_links import wait_for

STATIONS = ("station-1", "station-2", "station-3")


@pytest.fixture(scope="module")
def fleet():
    directory = tempfile.mkdtemp(prefix="gcsguard-fleet-")
    f = Fleet(directory, prefix=f"gcf{os.getpid() % 10000}", stations=3)
    try:
        f.up()
        yield f
    finally:
        problems = f.down()
        shutil.rmtree(directory, ignore_errors=True)
        assert not problems, problems


def gcsguard(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True,
                          timeout=120)


def stations_in(result: list[dict]) -> set[str]:
    return {r["metric"].get("station") for r in result}


def firing(fleet, name: str) -> list[dict]:
    return [a for a in fleet.alerts() if a["labels"]["alertname"] == name]


def pubkey(station) -> str:
    return os.path.join(station.directory, "keys", "log-signing.pub")


def copy_caught_up(fleet, station) -> bool:
    """The collector's copy ends where the station's log does (files and checkpoints)."""
    copy = fleet.copy_of(station)
    if not os.path.isdir(copy):
        return False
    log = pathlib.Path(station.directory, "log")
    for mine in log.glob("*.jsonl"):
        theirs = pathlib.Path(copy, mine.name)
        if not theirs.exists() or mine.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[-1] not in theirs.read_bytes():
            return False
    return True


def test_a_vendor_attempt_alerts_naming_its_station_only(fleet):
    two = fleet.stations[1]
    assert wait_for(lambda: stations_in(fleet.query('up{job="gcsguard"} == 1')) == set(STATIONS), timeout=30)
    assert firing(fleet, "GcsguardVendorEgressAttempt") == []          # nothing before any attempt
    # station 2's first refusal ever: its series is born at the first packet
    two.run("ctl", "curl", "-s", "-m", "1", f"http://{VENDOR}:8080/")
    assert wait_for(lambda: firing(fleet, "GcsguardVendorEgressAttempt"), timeout=30)
    time.sleep(5)                                    # room for a wrong station's alert to show
    assert {a["labels"]["station"] for a in firing(fleet, "GcsguardVendorEgressAttempt")} == {"station-2"}
    assert wait_for(lambda: [p for p in fleet.pages() if p["status"] == "firing" and
                             p["commonLabels"].get("alertname") == "GcsguardVendorEgressAttempt"], timeout=20)
    sent = [p for p in fleet.pages() if p["commonLabels"].get("alertname") == "GcsguardVendorEgressAttempt"]
    assert {p["commonLabels"]["station"] for p in sent} == {"station-2"}
    assert all("station station-2" in a["annotations"]["summary"] for p in sent for a in p["alerts"])
    # the region's Prometheus holds every station too, with its label (federation)
    assert stations_in(fleet.query("gcsguard_build_info", port=9091)) == set(STATIONS)


def test_every_panel_has_data_for_every_station(fleet):
    """The fleet dashboard's rows and the station dashboards, each station chosen in turn."""
    with ThreadPoolExecutor(len(fleet.stations)) as pool:     # each in its own namespaces
        assert [code for code, _ in pool.map(lambda s: s.verify(), fleet.stations)] == [0, 0, 0]
        for _ in range(2):                       # rates need two samples
            list(pool.map(misbehave, fleet.stations))
            time.sleep(2)
    time.sleep(3)
    missing = []
    for name, board in dashboards().items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                expr = substitute(target["expr"])
                got = stations_in(fleet.query(expr))
                if name == "gcsguard-fleet.json" and got != set(STATIONS):
                    missing.append(f"{name}: {panel['title']}: {expr}: {sorted(got)}")
                for station in STATIONS if name != "gcsguard-fleet.json" else ():
                    if not fleet.query(substitute(target["expr"].replace("$station", station))):
                        missing.append(f"{name} ({station}): {panel['title']}: {expr}")
    assert not missing, "\n".join(missing)


def test_a_stopped_daemon_marks_its_station_down_and_only_it(fleet):
    three = fleet.stations[2]
    scraped = dashboards()["gcsguard-fleet.json"]["panels"]
    up_expr = next(t["expr"] for p in scraped if p["title"] == "Scraped" for t in p["targets"])
    three.appliance.terminate()
    three.appliance.wait(timeout=30)
    try:
        assert wait_for(lambda: {r["metric"]["station"]: r["value"][1]
                                 for r in fleet.query(up_expr.replace("$station", ".*"))}
                        == {"station-1": "1", "station-2": "1", "station-3": "0"}, timeout=30)
        assert wait_for(lambda: firing(fleet, "GcsguardDown"), timeout=40)
        time.sleep(3)
        assert {a["labels"].get("station") for a in firing(fleet, "GcsguardDown")} == {"station-3"}
    finally:
        three.start_appliance()
    assert wait_for(lambda: firing(fleet, "GcsguardDown") == [], timeout=60)


def test_the_collector_away_for_30_s_loses_no_record(fleet):
    two = fleet.stations[1]
    fleet.stop_collector()
    stopped = time.monotonic()
    try:
        for _ in range(20):                                     # records while it is away
            two.run("ctl", "dig", "+short", "+time=1", "mydjiflight.dji.com")
        # every station's lines wait (in its log files); the stall alerts, per station
        assert wait_for(lambda: {a["labels"]["station"] for a in firing(fleet, "GcsguardShippingStalled")}
                        == set(STATIONS), timeout=40)
        time.sleep(max(0.0, 30 - (time.monotonic() - stopped)))
    finally:
        fleet.start_collector()
    for station in fleet.stations:
        assert wait_for(lambda: copy_caught_up(fleet, station), timeout=60), station.settings["station"]
    text = two.metrics_text()                   # the shipping families: as documented, promtool-clean
    exposed = {f.name + ("_total" if f.type == "counter" else "") for f in text_string_to_metric_families(text)}
    assert {f for f in exposed if f.startswith("gcsguard_ship_")} == documented_families("gcsguard_ship_")
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert wait_for(lambda: (two.metric("gcsguard_ship_resumptions_total") or 0) >= 1, timeout=20)
    for station in fleet.stations:
        out = gcsguard("review", "verify", fleet.copy_of(station), "--copy", "--pubkey", pubkey(station))
        assert out.returncode == 0, out.stdout + out.stderr
        last = chain.last_record(os.path.join(station.directory, "log",
                                              chain.log_files(os.path.join(station.directory, "log"))[-1]))[0]
        assert f"n=1..{last['n']}" in out.stdout or f"..{last['n']})" in out.stdout, out.stdout


def test_a_tail_cut_on_the_station_is_found_from_the_central_copy(fleet, tmp_path):
    one = fleet.stations[0]
    log = os.path.join(one.directory, "log")
    checkpoints = lambda d: [json.loads(l) for l in open(os.path.join(d, chain.CHECKPOINTS))]  # noqa: E731
    before = max(c["n"] for c in checkpoints(log))
    one.run("ctl", "dig", "+short", "+time=1", "mydjiflight.dji.com")      # records after it
    assert wait_for(lambda: max(c["n"] for c in checkpoints(log)) > before and copy_caught_up(fleet, one),
                    timeout=40)
    # what an intruder on station 1 does: the log and its checkpoints cut back to `before`
    cut = tmp_path / "station-1-log"
    shutil.copytree(log, cut, ignore=shutil.ignore_patterns("pcap", "*.lock"))
    kept = [c for c in checkpoints(cut) if c["n"] <= before]
    (cut / chain.CHECKPOINTS).write_text("".join(json.dumps(c, separators=(",", ":")) + "\n" for c in kept))
    for name in chain.log_files(str(cut)):
        lines = (cut / name).read_bytes().splitlines(keepends=True)
        (cut / name).write_bytes(b"".join(l for l in lines if json.loads(l)["n"] <= before))
    alone = gcsguard("review", "verify", str(cut), "--pubkey", pubkey(one))
    assert alone.returncode == 0, alone.stdout            # the cut log, alone, looks whole
    central = os.path.join(fleet.copy_of(one), chain.CHECKPOINTS)
    against = gcsguard("review", "verify", str(cut), "--pubkey", pubkey(one), "--checkpoints", central)
    assert against.returncode == 1 and "truncated" in against.stdout, against.stdout


def test_a_shipper_killed_mid_burst_loses_at_most_its_window_and_says_which(fleet):
    """kill -9 of the station's rsyslog while records pour in: after its restart the copy
    is complete again, but for at most the lines that were in flight (RELP_WINDOW; imfile
    may have saved an offset past them), which `--copy` then names as missing. Lines sent a
    second time are dropped as such."""
    two = fleet.stations[1]
    burst = subprocess.Popen(topology.ns_exec(two.ns.ctl, "python3", "-c", DROPS, VENDOR),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.7)
        fleet.stop_shipper(two, signal.SIGKILL)
        fleet.start_shipper(two)
    finally:
        burst.wait(timeout=30)
    log = os.path.join(two.directory, "log")
    last = chain.last_record(os.path.join(log, chain.log_files(log)[-1]))[0]
    assert wait_for(lambda: chain.last_checkpoint(log).get("n", 0) >= last["n"], timeout=30)  # burst signed
    assert wait_for(lambda: copy_caught_up(fleet, two), timeout=60)
    numbers = lambda d: {json.loads(l)["n"] for name in chain.log_files(d)  # noqa: E731
                         for l in open(os.path.join(d, name), "rb")}
    missing = sorted(numbers(log) - numbers(fleet.copy_of(two)))
    assert len(missing) <= RELP_WINDOW, missing
    out = gcsguard("review", "verify", fleet.copy_of(two), "--copy", "--pubkey", pubkey(two))
    if missing:
        print(f"lost in flight: {missing}")
        assert out.returncode == 1 and f"records {missing[0]}..{missing[-1]} are missing" in out.stdout, out.stdout
    else:
        assert out.returncode == 0, out.stdout + out.stderr
        assert int(out.stdout.split("n=1..")[1].split(")")[0]) >= last["n"], out.stdout


def test_an_auditor_reads_every_station_from_the_central_copies(fleet, tmp_path):
    """One table of stations from the collector's copies (station 2's holds lines its killed
    shipper sent twice: read once)."""
    keys = [arg for s in fleet.stations for arg in ("--pubkey", pubkey(s))]
    out = gcsguard("review", "report", *(fleet.copy_of(s) for s in fleet.stations), *keys,
                   "--out", str(tmp_path / "fleet"))
    print(out.stdout)
    rows = [line for line in out.stdout.splitlines() if line.startswith("station-")]
    assert [r.split()[0] for r in rows] == list(STATIONS), out.stdout + out.stderr
    assert all("log VERIFIED" in r for r in rows), out.stdout
    index = (tmp_path / "fleet" / "index.html").read_text()
    assert all(s in index for s in STATIONS)


# 3,000 UDP packets to a vendor address in 1.5 s: dropped, each logged (up to the lab's log rate)
DROPS = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(3000):
    s.sendto(b"x", (sys.argv[1], 40000 + i % 100))
    if i % 100 == 99:
        time.sleep(0.05)
"""
