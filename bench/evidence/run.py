#!/usr/bin/env python3
"""Evidence benchmark: `review export` and `review verify` of a large synthetic log.

Writes a signed log of SIZE (default 1 GiB: about 2.5 million DNS records over a day, a
checkpoint every 300 s, 64 MiB files as the writer rotates them), then runs each command
as its own process and reports its wall time and peak RSS (the kernel's ru_maxrss). With
--base REV the same commands of an earlier revision (a git worktree) run on the same log,
side by side, as ratios.

    .venv/bin/python bench/evidence/run.py [--size-mb 1024] [--base REV]

Nothing leaves the machine: the log, the bundle and the worktree are in a temporary
directory, removed at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import orjson

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)

from appliance.events.clock import rfc3339          # noqa: E402
from appliance.evlog import chain, signing          # noqa: E402

START = 1796083200.0                                 # 2026-12-01T00:00:00Z
FILE_BYTES = 64 << 20
CHECKPOINT_EVERY = 300.0
CONFIG = """[appliance]
station = "bench"
state_dir = "{root}/state"
[log]
directory = "{root}/log"
signing_key_file = "{root}/log.key"
[evidence]
pcap_directory = "{root}/pcap"
[lists]
block = []
allow = []
"""


def make_log(root: str, size: int) -> tuple[int, float]:
    """A chained, signed log of about `size` bytes: (records, seconds it spans)."""
    key_path = os.path.join(root, "log.key")
    signing.generate_key(key_path, os.path.join(root, "log.pub"))
    key = signing.load_private(key_path)
    directory = os.path.join(root, "log")
    os.makedirs(directory)
    per_record = 430                                  # bytes of a typical dns.query record
    count = size // per_record
    step = 86400.0 / count                            # one day of records
    n, head, written, index, next_cp = 0, chain.GENESIS, 0, 0, START + CHECKPOINT_EVERY
    out = open(os.path.join(directory, chain.file_name("2026-12-01", index)), "wb")
    checkpoints = open(os.path.join(directory, chain.CHECKPOINTS), "wb")
    file_size = 0
    for i in range(count):
        t = START + i * step
        n += 1
        line = chain.encode(n, head, {
            "time": rfc3339(t), "type": "dns.query", "source": "dns", "action": "block",
            "reason": "name-list", "device_id": f"mac:00:00:5e:00:53:{i % 200:02x}",
            "device_ip": f"10.70.0.{i % 200 + 10}", "name": f"host{i % 5000}.mydjiflight.dji.com",
            "vendor": "DJI", "boot_id": "bench", "clock": "synced", "seq": i,
            "details": {"qtype": "A", "rcode": "NXDOMAIN", "list": "dji.txt:12", "ms": 0.08}})
        head = chain.line_hash(line)
        out.write(line + b"\n")
        file_size += len(line) + 1
        written += len(line) + 1
        if t >= next_cp or i == count - 1:
            cp = signing.sign_checkpoint(key, n=n, head=head, file=os.path.basename(out.name),
                                         time=rfc3339(t), station="bench", reason="interval",
                                         every=CHECKPOINT_EVERY)
            checkpoints.write(orjson.dumps(cp) + b"\n")
            next_cp += CHECKPOINT_EVERY
        if file_size >= FILE_BYTES:
            out.close()
            index += 1
            out = open(os.path.join(directory, chain.file_name("2026-12-01", index)), "wb")
            file_size = 0
    out.close()
    checkpoints.close()
    return n, 86400.0


def measure(argv: list[str], cwd: str, env: dict) -> tuple[float, float, int]:
    """(seconds, peak RSS in MiB, exit status) of one command, as its own process."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.monotonic() - start, usage.ru_maxrss / 1024, proc.returncode


def commands(root: str) -> dict[str, list[str]]:
    return {
        "export": ["review", "export", "-c", f"{root}/config.toml", "--from", "2026-12-01",
                   "--to", "2026-12-02", "--out", f"{root}/bundle.tar.gz"],
        "verify": ["review", "verify", f"{root}/log", "--pubkey", f"{root}/log.pub"],
    }


def run(size_mb: int, base: str = "") -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory(prefix="gcsguard-bench-evidence-") as root:
        t = time.monotonic()
        records, _ = make_log(root, size_mb << 20)
        made = time.monotonic() - t
        with open(f"{root}/config.toml", "w") as f:
            f.write(CONFIG.format(root=root))
        log_bytes = sum(os.path.getsize(os.path.join(root, "log", n))
                        for n in chain.log_files(os.path.join(root, "log")))
        print(f"log: {log_bytes / 2**20:.0f} MiB, {records:,} records (made in {made:.0f} s)")
        trees = {"this tree": REPO}
        if base:
            trees[f"base {base}"] = os.path.join(root, "base")
            subprocess.run(["git", "-C", REPO, "worktree", "add", "--detach", trees[f"base {base}"],
                            base], check=True, capture_output=True)
        try:
            for label, tree in trees.items():
                env = dict(os.environ, PYTHONPATH=tree)
                for name, argv in commands(root).items():
                    seconds, rss, code = measure([sys.executable, "-m", "appliance", *argv], tree, env)
                    results.append({"tree": label, "command": name, "seconds": seconds,
                                    "rss_mib": rss, "exit": code, "log_mib": log_bytes / 2**20})
                    print(f"{label:>16} {name:>7}: {seconds:6.1f} s, peak RSS {rss:7.1f} MiB, exit {code}")
        finally:
            if base:
                subprocess.run(["git", "-C", REPO, "worktree", "remove", "--force",
                                trees[f"base {base}"]], capture_output=True)
    return results


def table(results: list[dict]) -> str:
    lines = ["| tree | command | log | time | peak RSS |", "|---|---|---|---|---|"]
    lines += [f"| {r['tree']} | {r['command']} | {r['log_mib']:.0f} MiB | {r['seconds']:.1f} s | "
              f"{r['rss_mib']:.0f} MiB |" for r in results]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--base", default="", help="also run an earlier revision's commands")
    args = parser.parse_args()
    if shutil.which("git") is None and args.base:
        parser.error("--base needs git")
    results = run(args.size_mb, args.base)
    print(table(results))
    return 0 if all(r["exit"] == 0 for r in results if r["tree"] == "this tree") else 1


if __name__ == "__main__":
    sys.exit(main())
