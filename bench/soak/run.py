#!/usr/bin/env python3
"""A soak run: a station's mixed load on the lab's appliance for minutes, sampled every
interval: the resident memory and CPU of the daemon and the gate, events lost (bus drops,
NFLOG and conntrack overruns), and what a well-behaved client got while another client
misbehaved (bench/soak/load.py says what each does).

    .venv/bin/python bench/soak/run.py [--minutes 10] [--interval 10] [--png docs/soak.png]

As root; everything inside the lab's namespaces, bounded in time. Prints the samples as
JSON and a verdict: memory flat after warm-up (the last third's mean within 10 % of the
middle third's), the whole appliance under 300 MB, nothing lost, every request of the
well-behaved client answered.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
from appliance.lab import topology  # noqa: E402
from appliance.lab.lab import Lab  # noqa: E402

LOST = (("gcsguard_events_dropped_total", {"sink": "log"}), ("gcsguard_nflog_overruns_total", {}),
        ("gcsguard_nflog_sequence_gaps_total", {}), ("gcsguard_conntrack_overruns_total", {}))
# the misbehaving client meeting the bounds (it must, or it did not misbehave enough)
BOUNDS = (("gcsguard_dns_rate_limited_total", {}),
          *(("gcsguard_dns_tcp_dropped_total", {"reason": r}) for r in ("total", "client-share", "slow-reader")),
          ("gcsguard_events_total", {"type": "gate.client_capped", "action": "block"}))
TICK = os.sysconf("SC_CLK_TCK")


def process(pid: int) -> tuple[float, float]:
    """(resident MB, CPU seconds so far) of a process."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / TICK


def soak(seconds: float, interval: float) -> dict:
    with tempfile.TemporaryDirectory(dir="/var/lib") as d:
        os.chmod(d, 0o755)
        lab = Lab(d, prefix=f"gcs{os.getpid() % 100000}")
        lab.up(mode="vendor-block", flow_progress_interval=60.0)
        try:
            lab.run("ctl", "ip", "addr", "add", "10.70.0.66/24", "dev", "eth0")
            pids = {"daemon": lab.state.pids["appliance"], "gate": lab.state.pids["gate"]}
            load = subprocess.Popen(topology.ns_exec(lab.ns.ctl, sys.executable, os.path.join(HERE, "load.py"),
                                                     str(interval), str(seconds)),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            samples, last, start = [], {k: process(p)[1] for k, p in pids.items()}, time.monotonic()
            while load.poll() is None and time.monotonic() - start < seconds + 30:
                time.sleep(interval - (time.monotonic() - start) % interval)
                row = {"t": round(time.monotonic() - start)}
                for name, pid in pids.items():
                    rss, cpu = process(pid)
                    row[f"{name}_rss_mb"] = round(rss, 1)
                    row[f"{name}_cpu_pct"] = round(100 * (cpu - last[name]) / interval, 1)
                    last[name] = cpu
                row["lost"] = sum(lab.metric(name, **labels) or 0 for name, labels in LOST)
                row["bounds_hit"] = sum(lab.metric(name, **labels) or 0 for name, labels in BOUNDS)
                row["written"] = lab.metric("gcsguard_log_records_written_total")
                samples.append(row)
            out, err = load.communicate(timeout=60)
            assert load.returncode == 0, err[-2000:]
            windows = {w["window"]: w for w in map(json.loads, out.splitlines())}
            for i, row in enumerate(samples):
                row.update({k: v for k, v in windows.get(i, {}).items() if k != "window"})
            return {"seconds": seconds, "interval": interval, "samples": samples,
                    "verdict": verdict(samples)}
        finally:
            lab.down()


def verdict(samples: list[dict]) -> dict:
    full = [s for s in samples if "dns_ok" in s]              # windows the load ran through
    total = [s["daemon_rss_mb"] + s["gate_rss_mb"] for s in full]
    third = max(1, len(total) // 3)
    middle, end = total[third:2 * third] or total, total[-third:]
    growth = (sum(end) / len(end)) / (sum(middle) / len(middle)) - 1 if total else 0.0
    failed = sum(s.get("dns_fail", 0) + s.get("http_fail", 0) for s in full)
    asked = sum(s.get("dns_ok", 0) + s.get("http_ok", 0) for s in full) + failed
    return {"rss_max_mb": max(total, default=0), "rss_growth_after_warmup": round(growth, 3),
            "lost": samples[-1]["lost"] if samples else None,
            "well_behaved_answered": f"{asked - failed}/{asked}",
            "flat": abs(growth) < 0.10, "under_300_mb": max(total, default=0) < 300,
            "nothing_lost": bool(samples) and samples[-1]["lost"] == 0,
            "bounds_hit": samples[-1]["bounds_hit"] if samples else 0,
            "all_answered": failed == 0 and asked > 0}


def plot(result: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    s = result["samples"]
    t = [row["t"] / 60 for row in s]
    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    axes[0].plot(t, [r["daemon_rss_mb"] for r in s], label="daemon")
    axes[0].plot(t, [r["gate_rss_mb"] for r in s], label="gate")
    axes[0].plot(t, [r["daemon_rss_mb"] + r["gate_rss_mb"] for r in s], label="appliance")
    axes[0].set_ylabel("resident MB")
    axes[1].plot(t, [r["daemon_cpu_pct"] for r in s], label="daemon")
    axes[1].plot(t, [r["gate_cpu_pct"] for r in s], label="gate")
    axes[1].set_ylabel("CPU % of one core")
    axes[2].plot(t, [r["lost"] for r in s], label="events lost (total)")
    axes[2].plot(t, [r.get("dns_fail", 0) + r.get("http_fail", 0) for r in s],
                 label="well-behaved client: unanswered")
    axes[2].set_ylabel("count")
    axes[2].set_xlabel("minutes")
    for ax in axes:
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    v = result["verdict"]
    fig.suptitle(f"gcsguard soak: {result['seconds'] / 60:g} min, sampled every {result['interval']:.0f} s; "
                 f"max {v['rss_max_mb']:.0f} MB, growth {100 * v['rss_growth_after_warmup']:+.1f} %")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--png", default="", help="write the plot here")
    args = parser.parse_args()
    result = soak(args.minutes * 60, args.interval)
    if args.png:
        plot(result, args.png)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
