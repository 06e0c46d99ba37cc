#!/usr/bin/env python3
"""Observation benchmarks, as root, in network namespaces of their own:

1. reader:  the NFLOG reader alone: logged drops per second it takes with exact
            accounting (received + sequence gaps = sent, overruns counted).
2. e2e:     the whole path in the lab's appliance: NFLOG -> event (device, attribution,
            pcap evidence) -> bus -> signed log: events per second that reach the log.
3. flows:   conntrack NEW events per second the flow reader turns into records.

    .venv/bin/python bench/observe/run.py [--seconds 5] [--rates 20000,50000,80000]

Every load is bounded in count and time and stays inside the namespaces made here.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)

SENDER = textwrap.dedent("""
    import socket, sys, time
    host, port, rate, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    fresh = sys.argv[5] == "fresh"          # a new source port, so a new flow, per datagram
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent, start = 0, time.monotonic()
    while (now := time.monotonic() - start) < seconds:
        due = int(rate * now)
        while sent < due:
            try:
                if fresh:    # ports in turn, each reused only after its entry expired (lab: 3 s)
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as f:
                        f.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                        f.bind(("0.0.0.0", 1024 + sent % 64000))
                        f.sendto(b"x" * 32, (host, port))
                else:
                    s.sendto(b"x" * 32, (host, port))
            except PermissionError:          # dropped (and logged) in this host's output chain
                pass
            sent += 1
        time.sleep(0.001)
    print(sent)
""")

READER = textwrap.dedent("""
    import asyncio, json, sys, time
    from appliance.observe.nflog import NflogReader
    async def main(seconds):
        reader, first = NflogReader(7), []
        def handle(p):
            if not first: first.append(time.monotonic())
        task = asyncio.create_task(reader.run(handle))
        await asyncio.sleep(seconds)
        task.cancel()
        print(json.dumps({"received": reader.received, "gaps": reader.gaps,
                          "overruns": reader.overruns}))
    asyncio.run(main(float(sys.argv[1])))
""")


def ns_run(ns, *cmd, **kw):
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, **kw)


def bench_reader(rate: int, seconds: float) -> dict:
    ns = f"gcsbench{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        ns_run(ns, "ip", "link", "set", "lo", "up")
        ns_run(ns, "nft", "add table inet b; add chain inet b out { type filter hook output priority 0; }; "
               "add rule inet b out udp dport 9998 log prefix \"gcsguard bench \" group 7 drop")
        reader = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", READER,
                                   str(seconds + 2)], stdout=subprocess.PIPE, text=True, cwd=REPO)
        time.sleep(1.0)
        sent = int(ns_run(ns, sys.executable, "-c", SENDER, "127.0.0.1", "9998", str(rate),
                          str(seconds), "same").stdout)
        counts = json.loads(reader.communicate(timeout=seconds + 30)[0])
        return {"offered_per_s": rate, "sent": sent, **counts,
                "exact": counts["received"] + counts["gaps"] == sent,
                "received_per_s": round(counts["received"] / seconds)}
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)


def bench_lab(rate: int, flow_rate: int, seconds: float) -> dict:
    from appliance.lab.lab import Lab
    with tempfile.TemporaryDirectory() as d:
        lab = Lab(d, prefix=f"gcb{os.getpid() % 100000}")
        lab.up(mode="vendor-block", log_rate=1000000, flow_progress_interval=60.0)
        try:
            written = lambda: lab.metric("gcsguard_log_records_written_total") or 0   # noqa: E731
            before = written()             # polled by metric: reading the log would compete for CPU
            flows_before = lab.metric("gcsguard_flows_total", state="new") or 0
            start = time.monotonic()
            sent = int(lab.run("ctl", sys.executable, "-c", SENDER, "198.51.100.53", "853", str(rate),
                               str(seconds), "same", timeout=seconds + 30).stdout)
            deadline = time.monotonic() + 60
            while written() - before < sent and time.monotonic() < deadline:
                time.sleep(0.2)
            elapsed = time.monotonic() - start
            time.sleep(1.0)            # other records (accounting) counted too: let the last in
            blocked = sum(1 for e in lab.events() if e["type"] == "egress.blocked"
                          and e["details"].get("dport") == 853)
            e2e = {"offered_per_s": rate, "sent": sent, "in_log": blocked,
                   "kernel": lab.metric("gcsguard_firewall_packets_total", reason="dot"),
                   "bus_dropped": lab.metric("gcsguard_events_dropped_total", sink="log") or 0,
                   "seconds_to_log_all": round(elapsed, 1),
                   "in_log_per_s": round(blocked / max(elapsed, seconds))}
            flows = int(lab.run("ctl", sys.executable, "-c", SENDER, "198.51.100.80", "5000",
                                str(flow_rate), str(seconds), "fresh", timeout=seconds + 30).stdout)
            time.sleep(2)
            new = (lab.metric("gcsguard_flows_total", state="new") or 0) - flows_before
            flows = {"offered_per_s": flow_rate, "flows": flows, "new_records": new,
                     "new_per_s": round(new / seconds),
                     "overruns": lab.metric("gcsguard_conntrack_overruns_total"),
                     "resynced": lab.metric("gcsguard_flows_total", state="resync")}
            return {"e2e": e2e, "flows": flows}
        finally:
            lab.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rates", default="20000,50000,80000", help="reader: offered drops/s")
    parser.add_argument("--e2e-rate", type=int, default=5000, help="drops/s through the lab")
    parser.add_argument("--flow-rate", type=int, default=3000, help="new flows/s through the lab")
    args = parser.parse_args()
    results = {"reader": [bench_reader(int(r), args.seconds) for r in args.rates.split(",")]}
    results.update(bench_lab(args.e2e_rate, args.flow_rate, args.seconds))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
