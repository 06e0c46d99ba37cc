"""`gcsguard status`: is this station protecting as configured? One screen, one exit code.

Each line is one fact read from where it lives (the kernel's ruleset and forwarding, the
units, the applied-policy file, the verification results, the lists, the log and its
checkpoints, the upstreams); a fact that means the station is not protecting as its
config says is a problem, and any problem makes the exit status 1. Reading only, except
one DNS question (the root's SOA) to each configured upstream.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable

from .config import ConfigError

UNITS = ("gcsguard-firewall-boot.service", "gcsguard.service", "gcsguard-gate.service",
         "gcsguard-verify.timer")
VERIFY_STALE_S = 2 * 3600         # the timer runs hourly


@dataclass
class Status:
    facts: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def fact(self, key: str, value: str, problem: str = "") -> None:
        self.facts.append((key, value))
        if problem:
            self.problems.append(problem)


def gather(config_path: str, now: Callable[[], float] = time.time) -> Status:
    from .firewall.boot import forwarding
    from .policy import load_policy
    s = Status()
    try:
        policy = load_policy(config_path)
    except ConfigError as e:
        s.fact("config", f"{config_path}: does not load", "the config does not load: the "
               "daemon cannot start; the station stays closed (boot table, forwarding off)")
        s.facts += [("", line) for line in e.errors[:5]]
        s.fact("ruleset", _table_state("gcsguard"))
        s.fact("forwarding", forwarding())
        return s
    config = policy.config
    s.fact("config", f"{config_path} (sha256 {config.sha256[:12]})")
    s.fact("mode", policy.mode)
    _ruleset(s, config, policy.mode)
    fw = forwarding()
    s.fact("forwarding", fw, "" if fw == "on" or not config.firewall.enabled else
           "forwarding is off: the LAN reaches nothing (closed, not serving)")
    _units(s, config)
    _lists(s, policy)
    _verification(s, config, now())
    _log(s, config)
    _upstreams(s, config)
    return s


def _table_state(table: str) -> str:
    try:
        out = subprocess.run(["nft", "list", "table", "inet", table], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown ({e})"
    if out.returncode:
        return "none"
    return "full ruleset" if "chain input" in out.stdout else "boot table"      # boot: forward only


def _ruleset(s: Status, config, mode: str) -> None:
    if not config.firewall.enabled:
        s.fact("ruleset", "disabled in the config ([firewall] enabled = false)")
        return
    state = _table_state(config.firewall.table)
    applied_path = os.path.join(config.appliance.state_dir, "applied-policy.json")
    try:
        applied = json.load(open(applied_path))
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(os.path.getmtime(applied_path)))
    except (OSError, ValueError):
        applied, since = {}, "?"
    if state != "full ruleset":
        s.fact("ruleset", state, f"the ruleset is not in force ({state}): the station is closed "
               "until the daemon loads it")
        return
    problem = ""
    if applied.get("mode") != config.firewall.mode:
        problem = (f"the ruleset in force is mode {applied.get('mode')}, the config says "
                   f"{config.firewall.mode}: reload (systemctl reload gcsguard)")
    elif applied.get("config_sha256") != config.sha256:
        problem = "the config changed since the ruleset was loaded: reload (systemctl reload gcsguard)"
    s.fact("ruleset", f"full ruleset in force since {since}, mode {applied.get('mode')}, sha256 "
           f"{str(applied.get('ruleset_sha256', ''))[:12]}", problem)


def _units(s: Status, config) -> None:
    if os.path.isdir("/run/systemd/system") and shutil.which("systemctl"):
        for unit in UNITS:
            state = subprocess.run(["systemctl", "is-active", unit], capture_output=True,
                                   text=True).stdout.strip() or "unknown"
            wanted = unit != "gcsguard-gate.service" or config.gate.enabled
            bad = wanted and state != "active" and unit != "gcsguard-verify.timer"
            s.fact(unit, state, f"{unit} is {state}" if bad else "")
        return
    alive = _socket_alive(config.events.socket)            # no systemd: the daemon's own socket
    s.fact("daemon", "running (its event socket answers)" if alive else "not running",
           "" if alive else "the daemon is not running")


def _socket_alive(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def _lists(s: Status, policy) -> None:
    loaded = [r for r in policy.reports if r.status == "loaded"]
    entries = sum(r.entries for r in loaded)
    unloaded = policy.unloaded()
    s.fact("lists", f"{len(loaded)} of {len(policy.reports)} loaded, {entries} entries",
           f"not every list loads: {'; '.join(unloaded[:3])}" if unloaded else "")


def _verification(s: Status, config, now: float) -> None:
    from .verify.run import results_path
    try:
        results = json.load(open(results_path(config)))
    except (OSError, ValueError):
        s.fact("last verification", "never", "isolation was never verified (gcsguard verify)"
               if config.verify.enabled else "")
        return
    finished = results.get("finished") or 0
    age = now - finished if isinstance(finished, (int, float)) else float("inf")
    passed = bool(results.get("passed"))
    text = f"{'passed' if passed else 'FAILED ' + ', '.join(results.get('failed', []))}, " \
           f"{age / 60:.0f} min ago"
    problem = "" if passed else "the last verification failed"
    if passed and age > VERIFY_STALE_S and config.verify.enabled:
        problem = f"the last verification is {age / 3600:.1f} h old"
    s.fact("last verification", text, problem)


def _log(s: Status, config) -> None:
    from .evlog import chain
    files = chain.log_files(config.log.directory)
    record = None
    for name in reversed(files):
        record, _, _ = chain.last_record(os.path.join(config.log.directory, name))
        if record:
            break
    if record is None:
        s.fact("log", f"{config.log.directory}: no records", "the log holds no records")
        return
    s.fact("log head", f"record {record['n']} at {record.get('time')} ({record.get('type')})")
    checkpoint = chain.last_checkpoint(config.log.directory)
    if "n" in checkpoint:
        s.fact("last checkpoint", f"record {checkpoint['n']} at {checkpoint.get('time')} "
               f"({checkpoint.get('reason')})")
    else:
        s.fact("last checkpoint", "none", "no signed checkpoint: the log cannot be verified")


def _upstreams(s: Status, config) -> None:
    import dnslib

    from .config.endpoint import Endpoint
    query = dnslib.DNSRecord.question(".", "SOA").pack()
    answered = 0
    for upstream in config.dns.upstreams:
        try:
            host, port = Endpoint.parse(upstream)
        except ValueError:
            s.fact(f"upstream {upstream}", "unreadable")
            continue
        start = time.monotonic()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2.0)
            try:
                sock.sendto(query, (host, port))
                sock.recv(4096)
                state = f"answers ({(time.monotonic() - start) * 1000:.0f} ms)"
                answered += 1
            except OSError as e:
                state = f"no answer ({e.strerror or 'timeout'})"
        s.fact(f"upstream {upstream}", state)
    if config.dns.upstreams and not answered:
        s.problems.append("no upstream answers: allowed names do not resolve")


def render(s: Status) -> str:
    width = max((len(k) for k, _ in s.facts), default=0)
    lines = [f"{k:<{width}}  {v}" for k, v in s.facts]
    if s.problems:
        lines += ["", "NOT PROTECTING AS CONFIGURED:"] + [f"  - {p}" for p in s.problems]
    else:
        lines += ["", "OK: protecting as configured"]
    return "\n".join(lines)
