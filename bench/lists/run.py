#!/usr/bin/env python3
"""List loading benchmark: time and memory to load 100k and 1M domains.

    .venv/bin/python bench/lists/run.py [--sizes 100000,1000000] [--runs 3] [--write-doc]

Uses the same seeded synthetic names as the peers' reference set-up
(../shared/bench/gen_data.py), so the figures compare with dnsmasq's and unbound's
there. Each run is a fresh process: peak RSS is the process's own high-water mark
(interpreter included). Results go to stdout and, with --write-doc, into
docs/benchmarks.md between the `lists` markers.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
GEN = os.path.join(REPO, "..", "shared", "bench", "gen_data.py")

CHILD = r"""
import json, resource, sys, time
from appliance.lists import load
t = time.perf_counter()
lists, reports = load([sys.argv[1]], [], 0)
elapsed = time.perf_counter() - t
assert reports[0].status == "loaded", reports[0].fatal
rss = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])
print(json.dumps({"seconds": elapsed, "entries": len(lists.domains), "rss_kb": rss,
                  "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def make_list(path: str, n: int) -> None:
    spec = importlib.util.spec_from_file_location("gen_data", GEN)
    if spec is None or not os.path.exists(GEN):
        raise SystemExit(f"{GEN}: the peers' data generator is needed for comparable names")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    with open(path, "w") as f:
        f.write("# vendor: Bench\n# category: synthetic\n")
        f.write("\n".join(gen.make_domains(n)) + "\n")


def measure(path: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, path], check=True, capture_output=True,
                         text=True, timeout=120, cwd=REPO).stdout
    return json.loads(out)


def run(sizes: list[int], runs: int) -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = os.path.join(tmp, f"blocklist_{n}.txt")
            make_list(path, n)
            samples = [measure(path) for _ in range(runs)]
            secs = sorted(s["seconds"] for s in samples)
            results.append({
                "size": n, "runs": runs, "entries": samples[0]["entries"],
                "seconds_median": statistics.median(secs), "seconds_min": secs[0], "seconds_max": secs[-1],
                "rss_mb_median": statistics.median(s["rss_kb"] for s in samples) / 1024,
                "peak_mb_max": max(s["peak_kb"] for s in samples) / 1024})
    return results


def table(results: list[dict]) -> str:
    rows = ["| domains | load s (median, min–max) | RSS after load MB | peak RSS MB |",
            "|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r['size']:,} | {r['seconds_median']:.2f} ({r['seconds_min']:.2f}–"
                    f"{r['seconds_max']:.2f}) | {r['rss_mb_median']:.0f} | {r['peak_mb_max']:.0f} |")
    return "\n".join(rows)


def write_doc(text: str) -> None:
    doc = os.path.join(REPO, "docs", "benchmarks.md")
    content = open(doc).read()
    start, end = "<!-- lists:start -->", "<!-- lists:end -->"
    before, rest = content.split(start)
    _, after = rest.split(end)
    open(doc, "w").write(f"{before}{start}\n{text}\n{end}{after}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--write-doc", action="store_true")
    args = ap.parse_args()
    results = run([int(s) for s in args.sizes.split(",")], args.runs)
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=REPO).stdout.strip()
    text = (f"Measured {args.runs} fresh processes per size; Python {platform.python_version()}, "
            f"kernel {platform.release()}, {platform.machine()}, git {rev}.\n\n{table(results)}")
    print(text)
    if args.write_doc:
        write_doc(text)


if __name__ == "__main__":
    main()
