#!/usr/bin/env python3
"""Median and spread of qps per server and case from merged dnsperf results (bench/dns/run.sh).

    python3 bench/dns/medians.py RESULTS_DIR [--ref dnsmasq_addr_100k]
"""
import argparse
import glob
import os
import re
import statistics
from collections import defaultdict

ap = argparse.ArgumentParser()
ap.add_argument("resdir")
ap.add_argument("--ref", default="dnsmasq_addr_100k")
args = ap.parse_args()
runs = defaultdict(list)
for path in sorted(glob.glob(os.path.join(args.resdir, "*.r*.txt"))):
    m = re.match(r"(.+)\.(blocked|cached|uncached)\.r\d+\.txt$", os.path.basename(path))
    q = re.search(r"Queries per second:\s+([\d.]+)", open(path).read())
    if m and q:
        runs[m.groups()].append(float(q.group(1)))
ref = {case: statistics.median(v) for (server, case), v in runs.items() if server == args.ref}
print("| server | case | runs | median qps | min–max | spread | median vs dnsmasq |")
print("|---|---|---:|---:|---|---:|---:|")
for (server, case), v in sorted(runs.items(), key=lambda kv: (kv[0][0], ["blocked", "cached", "uncached"].index(kv[0][1]))):
    med = statistics.median(v)
    ratio = f"{med / ref[case]:.2f}" if ref.get(case) else "-"
    print(f"| {server} | {case} | {len(v)} | {med:,.0f} | {min(v):,.0f}–{max(v):,.0f} | "
          f"±{(max(v) - min(v)) / 2 / med * 100:.0f}% | {ratio} |")
