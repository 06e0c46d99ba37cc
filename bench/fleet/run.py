"""Sizing in the fleet lab: series per station, log bytes per record and the collector's
CPU per shipped record, at a station's load (DNS lookups and drops from the controller).

    python -m bench.fleet.run [--stations 3] [--seconds 60] [--rate 20]

Every loop is bounded in count and time; the fleet is torn down at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

from appliance.evlog import chain
from appliance.lab.fleet import Fleet
from appliance.lab.internet import VENDOR


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lines_in(directory: str) -> tuple[int, int]:
    count = size = 0
    for name in [*chain.log_files(directory), chain.CHECKPOINTS]:
        path = os.path.join(directory, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read()
            count, size = count + data.count(b"\n"), size + len(data)
    return count, size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stations", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--rate", type=float, default=20, help="lookups per second per station")
    args = ap.parse_args()
    directory = tempfile.mkdtemp(prefix="gcsguard-fleet-bench-")
    fleet = Fleet(directory, prefix="gcfb", stations=args.stations)
    try:
        fleet.up()
        collector = fleet.state.pids["collector"]
        before = {s.settings["station"]: lines_in(fleet.copy_of(s)) for s in fleet.stations}
        cpu0, start = cpu_seconds(collector), time.monotonic()
        sent = 0
        while time.monotonic() - start < args.seconds and sent < args.seconds * args.rate * 2:
            for s in fleet.stations:      # one lookup each (logged), one vendor drop in ten
                s.run("ctl", "dig", "+short", "+time=1", "+tries=1", f"n{sent}.allowed.example")
                if sent % 10 == 0:
                    s.run("ctl", "curl", "-s", "-m", "0.2", f"http://{VENDOR}:8080/")
            sent += 1
            time.sleep(max(0.0, start + sent / args.rate - time.monotonic()))
        time.sleep(5)                     # the copies catch up
        elapsed, cpu = time.monotonic() - start, cpu_seconds(collector) - cpu0
        shipped = size = 0
        for s in fleet.stations:
            n, b = lines_in(fleet.copy_of(s))
            shipped, size = shipped + n - before[s.settings["station"]][0], size + b - before[s.settings["station"]][1]
        series = fleet.query('count by (station) ({job="gcsguard"})')
        print(f"stations {args.stations}, {elapsed:.0f} s, {sent} rounds")
        print("series per station:", {r["metric"]["station"]: r["value"][1] for r in series})
        print(f"shipped {shipped} lines, {size / max(shipped, 1):.0f} bytes each, "
              f"{shipped / elapsed / args.stations:.1f} lines/s per station")
        print(f"collector CPU {cpu:.2f} s: {cpu / elapsed * 100 / args.stations:.2f} % of a core per station, "
              f"{cpu / max(shipped, 1) * 1e6:.0f} us per line")
    finally:
        fleet.down()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
