#!/usr/bin/env python3
"""The TLS gate's cost, in one run in the lab: direct (gate off), through the gate
(passthrough) and blocked (vendor SNI). New TLS connections per second counting only
completed, verified handshakes (blocked: completed refusals), and the latency of each.

    .venv/bin/python bench/gate/run.py [--connections 400] [--concurrency 8]

As root; everything inside the lab's namespaces; bounded in count and time.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

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


def run(lab, name: str, address: str, count: int, workers: int, expect: str) -> dict:
    out = lab.run("ctl", sys.executable, "-c", CLIENT, address, name, lab.pki["ca"], str(count),
                  str(workers), expect, timeout=120)
    return json.loads(out.stdout)


def main() -> None:
    from appliance.lab.lab import Lab
    from appliance.lab.internet import ALLOWED
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="gcsguard-bench-")
    os.chmod(directory, 0o750)
    lab = Lab(os.path.join(directory, "lab"), prefix=f"gcg{os.getpid() % 100000}")
    lab.up(mode="vendor-block")
    # rate with `concurrency` clients; latency also one connection at a time (no queueing)
    results = {"direct": [], "gate": [], "blocked": [], "direct_1": [], "gate_1": []}
    try:
        for _ in range(args.rounds):                     # interleaved: the machine's noise is shared
            lab.reload(gate=False)
            results["direct"].append(run(lab, "www.allowed.example", ALLOWED, args.connections,
                                         args.concurrency, "ok"))
            results["direct_1"].append(run(lab, "www.allowed.example", ALLOWED, 100, 1, "ok"))
            lab.reload(gate=True)
            results["gate"].append(run(lab, "www.allowed.example", ALLOWED, args.connections,
                                       args.concurrency, "ok"))
            results["gate_1"].append(run(lab, "www.allowed.example", ALLOWED, 100, 1, "ok"))
            results["blocked"].append(run(lab, "mydjiflight.dji.com", ALLOWED, args.connections,
                                          args.concurrency, "refused"))
    finally:
        lab.down()

    def median(case, key):
        values = sorted(r[key] for r in results[case] if r[key] is not None)
        return values[len(values) // 2] if values else None
    summary = {case: {k: median(case, k) for k in ("per_s", "median_ms", "p99_ms")} for case in results}
    summary["gate_vs_direct_rate"] = round(summary["gate"]["per_s"] / summary["direct"]["per_s"], 2)
    for suffix in ("", "_1"):
        gate, direct = summary[f"gate{suffix}"], summary[f"direct{suffix}"]
        summary[f"added_median_ms{suffix}"] = round(gate["median_ms"] - direct["median_ms"], 2)
        summary[f"added_p99_ms{suffix}"] = round(gate["p99_ms"] - direct["p99_ms"], 2)
    print(json.dumps({"rounds": results, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
