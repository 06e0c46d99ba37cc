#!/usr/bin/env python3
"""The TLS gate's cost, side by side with its peers, in one run in the lab: direct (gate
off), through the gate (passthrough), blocked (vendor SNI), HAProxy as an SNI gate and a
bare Python relay (the floor) on the gate's port. New TLS connections per second counting
only completed, verified handshakes (blocked: completed refusals), the latency of each, and
the relaying process's CPU per connection.

    .venv/bin/python bench/gate/run.py [--connections 400] [--concurrency 8] [--rounds 3]

As root, with haproxy installed (apt); everything inside the lab's namespaces; bounded in
count and time.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
from appliance.config import load_config  # noqa: E402
from appliance.lab.internet import ALLOWED  # noqa: E402
from appliance.lab.labconfig import GATE_UID  # noqa: E402

CLIENT = textwrap.dedent("""
    import json, socket, ssl, statistics, sys, time
    from concurrent.futures import ThreadPoolExecutor
    address, name, ca, count, workers, expect_ok = sys.argv[1:7]
    count, workers, expect_ok = int(count), int(workers), expect_ok == "ok"
    ctx = ssl.create_default_context(cafile=ca)
    def one(_):
        start = time.perf_counter()
        try:
            with socket.create_connection((address, 443), timeout=3) as raw:
                with ctx.wrap_socket(raw, server_hostname=name):
                    pass
            ok = True
        except (OSError, ssl.SSLError):
            ok = False
        return ok, (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one, range(count)))
    elapsed = time.perf_counter() - start
    done = [ms for ok, ms in results if ok == expect_ok]
    done.sort()
    print(json.dumps({"completed": len(done), "of": count, "per_s": round(len(done) / elapsed, 1),
                      "median_ms": round(statistics.median(done), 2) if done else None,
                      "p99_ms": round(done[int(len(done) * 0.99) - 1], 2) if done else None}))
""")


# `server 0.0.0.0:0`: the client's original destination (HAProxy reads SO_ORIGINAL_DST
# after nft's redirect, as the gate does)
HAPROXY = """\
defaults
    mode tcp
    timeout connect 3s
    timeout client 10s
    timeout server 10s
frontend gate
    bind :{port}
    tcp-request inspect-delay 3s
    tcp-request content reject if {{ req.ssl_sni -m end .dji.com }}
    tcp-request content accept if {{ req.ssl_hello_type 1 }}
    default_backend original
backend original
    server original 0.0.0.0:0
"""


def peer_commands(lab, directory: str, port: int) -> dict[str, list[str]]:
    """Peers on the gate's port, as the gate's uid (the output chain's policy applies to them too):
    HAProxy as an SNI gate (C; rejects a vendor suffix, passes the rest to the original
    destination) and the floor, a bare Python relay that decides nothing."""
    config = os.path.join(directory, "haproxy.cfg")
    with open(config, "w") as f:
        f.write(HAPROXY.format(port=port))
    os.chmod(config, 0o644)
    as_gate = ["setpriv", f"--reuid={GATE_UID}", "--regid=0", "--clear-groups"]
    return {"haproxy": [*as_gate, "haproxy", "-db", "-f", config],
            # the lab's way to run Python as the gate's user: the checkout may be under a
            # 0700 home, so its code and venv are bound where that user can read them
            "relay": lab._as_gate(os.path.join(lab.directory, "gate-code", "bench", "gate", "relay.py"),
                                  str(port))}


def run(lab, name: str, count: int, workers: int, expect: str) -> dict:
    out = lab.run("ctl", sys.executable, "-c", CLIENT, ALLOWED, name, lab.pki["ca"], str(count),
                  str(workers), expect, timeout=120)
    return json.loads(out.stdout)


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(lab, pid: int | None, connections: int, concurrency: int) -> tuple[dict, dict]:
    """Rate with `concurrency` clients, latency one connection at a time (no queueing), the
    relaying process's CPU per connection over both, and the daemon's (it records them)."""
    daemon = lab.state.pids["appliance"]
    before, daemon_before = cpu_seconds(pid) if pid else 0.0, cpu_seconds(daemon)
    rate = run(lab, "www.allowed.example", connections, concurrency, "ok")
    single = run(lab, "www.allowed.example", 100, 1, "ok")
    if pid:
        rate["cpu_ms_per_connection"] = round((cpu_seconds(pid) - before) * 1000 / (connections + 100), 2)
    rate["daemon_cpu_ms_per_connection"] = round((cpu_seconds(daemon) - daemon_before) * 1000
                                                 / (connections + 100), 3)
    return rate, single


def bench(connections: int, concurrency: int, rounds: int, peers: tuple[str, ...]) -> dict:
    """Every case once per round, interleaved (the machine's noise is shared)."""
    from appliance.lab import topology
    from appliance.lab.lab import Lab
    directory = tempfile.mkdtemp(prefix="gcsguard-bench-")
    os.chmod(directory, 0o750)
    lab = Lab(os.path.join(directory, "lab"), prefix=f"gcg{os.getpid() % 100000}")
    lab.up(mode="vendor-block", flow_progress_interval=60.0)      # a station's interval
    commands = {k: v for k, v in peer_commands(lab, directory, load_config(lab.config_path).gate.listen_port).items()
                if k in peers}
    results: dict[str, list] = {}

    def keep(case: str, measured: tuple[dict, dict]) -> None:
        results.setdefault(case, []).append(measured[0])
        results.setdefault(f"{case}_1", []).append(measured[1])
    try:
        for _ in range(rounds):
            lab.reload(gate=False)
            keep("direct", measure(lab, None, connections, concurrency))
            lab.reload(gate=True)
            keep("gate", measure(lab, lab.state.pids["gate"], connections, concurrency))
            results.setdefault("blocked", []).append(
                run(lab, "mydjiflight.dji.com", connections, concurrency, "refused"))
            if not commands:
                continue
            lab.stop_gate()
            for peer, command in commands.items():
                process = topology.start(lab.state, peer, lab.ns.appl, *command)
                time.sleep(1.0)
                assert process.poll() is None, f"{peer} exited: {lab._read(peer + '.out')[-2000:]}"
                keep(peer, measure(lab, process.pid, connections, concurrency))
                if peer == "haproxy":                    # a peer that does the gate's job
                    refused = run(lab, "mydjiflight.dji.com", 20, 1, "refused")
                    assert refused["completed"] == 20, refused
                topology.stop(lab.state, peer)
            lab.start_gate()
    finally:
        lab.down()
    return {"rounds": results, "summary": summarize(results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peers", default="haproxy,relay", help="peers to run beside the gate ('' for none)")
    args = parser.parse_args()
    peers = tuple(p for p in args.peers.split(",") if p)
    if "haproxy" in peers and not shutil.which("haproxy"):
        sys.exit("missing haproxy (the peer): apt-get install haproxy, or --peers relay")
    print(json.dumps(bench(args.connections, args.concurrency, args.rounds, peers), indent=2))


def summarize(results: dict[str, list]) -> dict:
    """Medians over rounds; a case's added latency is the median of its per-round difference
    from that round's direct run (paired: the machine's noise drifts between rounds)."""
    def median(values: list) -> float | None:
        values = sorted(v for v in values if v is not None)
        return values[len(values) // 2] if values else None

    def per_round(case: str, key: str) -> list:
        return [r.get(key) for r in results[case]]

    def added(case: str, key: str) -> float:
        return round(median([c - d for c, d in zip(per_round(case, key), per_round("direct_1", key))]), 2)
    summary = {"direct": {"per_s": median(per_round("direct", "per_s")),
                          "median_ms_1": median(per_round("direct_1", "median_ms"))},
               "blocked": {"per_s": median(per_round("blocked", "per_s"))}}
    summary["direct"]["daemon_cpu_ms_per_connection"] = median(per_round("direct", "daemon_cpu_ms_per_connection"))
    for case in ("gate", "haproxy", "relay"):
        if case not in results:
            continue
        summary[case] = {
            "rate_vs_direct": round(median([c / d for c, d in zip(per_round(case, "per_s"),
                                                                  per_round("direct", "per_s"))]), 2),
            "added_median_ms_1": added(f"{case}_1", "median_ms"),
            "added_p99_ms_1": added(f"{case}_1", "p99_ms"),
            "cpu_ms_per_connection": median(per_round(case, "cpu_ms_per_connection")),
            "daemon_cpu_ms_per_connection": median(per_round(case, "daemon_cpu_ms_per_connection"))}
    return summary


if __name__ == "__main__":
    main()
