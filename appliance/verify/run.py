"""One verification run: the probe up, every check attempted, the log read for the
evidence, the results recorded (events, the results file /metrics reads), the probe down.

Checks run one after another, so each attempt's records are unambiguous: only records
written after an attempt began are its evidence. A run that cannot be made (no probe)
is recorded too, as a failed run.
"""
from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import subprocess
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from ..atomic import atomic_write
from ..config import Config
from ..events.clock import Clock
from ..events.event import Event
from ..evlog import chain
from ..evlog.record import record
from ..firewall.learned import LearnedAddresses, store_path
from .checks import Check, Outcome, build, judge
from .probe import Probe, ProbeError

ATTEMPT_TIMEOUT = 8.0


def results_path(config: Config) -> str:
    return config.verify.results_file or os.path.join(config.appliance.state_dir, "verify.json")


def log_positions(directory: str) -> dict[str, int]:
    return {name: os.path.getsize(os.path.join(directory, name)) for name in chain.log_files(directory)}


def records_since(directory: str, positions: dict[str, int]) -> list[dict]:
    """Complete records appended since `positions` (files that are new are read whole)."""
    out = []
    for name in chain.log_files(directory):
        path = os.path.join(directory, name)
        if os.path.getsize(path) <= positions.get(name, 0):
            continue                          # nothing new: a year of files is not reopened
        with open(path, "rb") as f:
            f.seek(positions.get(name, 0))
            data = f.read()
        for line in data[:data.rfind(b"\n") + 1].splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def learned_vendor_address(config: Config) -> str:
    store = LearnedAddresses()
    try:
        store.load(store_path(config.appliance.state_dir))
    except ValueError:
        return ""
    v4 = sorted(a for a in store.elements()["learned_vendor"] if ipaddress.ip_address(a).version == 4)
    return v4[0] if v4 else ""


def _resolve(probe: Probe, name: str) -> str:
    if not name:
        return ""
    out = probe.run("dig", "+short", "+time=2", "+tries=1", f"@{probe.gateway}", name, "A").stdout
    for line in out.split():
        try:
            if ipaddress.ip_address(line).version == 4:
                return line
        except ValueError:
            continue
    return ""


def verify(config: Config) -> dict[str, Any]:
    """Run every check; returns the results (as written to the results file)."""
    os.makedirs(config.appliance.state_dir, exist_ok=True)
    with open(os.path.join(config.appliance.state_dir, "verify.lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError("another verification run is in progress") from None
        started, run_id = time.time(), uuid.uuid4().hex[:12]
        try:
            outcomes = _run_checks(config)
        except ProbeError as e:
            record(config, [Event(type="verify.run", stamp=Clock().stamp(), source="verify",
                                  action="error", reason="no-run", details={"run": run_id,
                                                                           "error": str(e)})])
            raise
        results = _results(config, run_id, started, outcomes)
        results["recorded"] = record(config, _events(run_id, results, outcomes))
        _write(results_path(config), results)
    return results


def _run_checks(config: Config) -> list[Outcome]:
    probe = Probe(config)
    probe.up()
    try:
        allowed = _resolve(probe, urlsplit(config.verify.allowed_url).hostname or "")
        ipv6_route = bool(subprocess.run(["ip", "-6", "route", "show", "default"],
                                         capture_output=True, text=True).stdout.strip())
        checks = build(config, probe.gateway, config.verify.vendor_address or
                       learned_vendor_address(config), allowed, ipv6_route)
        return [Outcome(c, "skip", "-", c.skip) if c.skip else Outcome(c, "fail", "-", c.fail)
                if c.fail else _attempt(config, probe, c) for c in checks]
    finally:
        probe.down()


def _attempt(config: Config, probe: Probe, check: Check) -> Outcome:
    """One attempt, then its records: only those written after it began count, and the
    next attempt waits until they are in (the packet log and the sink batch them), or
    until event_timeout has passed."""
    positions = log_positions(config.log.directory)
    proc = probe.run(*check.command, timeout=ATTEMPT_TIMEOUT)
    deadline = time.monotonic() + config.verify.event_timeout
    while True:
        outcome = judge(check, proc.returncode, proc.stdout,
                        records_since(config.log.directory, positions))
        if not outcome.unlogged or time.monotonic() > deadline:
            return outcome
        time.sleep(0.2)


def _results(config: Config, run_id: str, started: float, outcomes: list[Outcome]) -> dict:
    finished = time.time()
    failed = [o.check.key for o in outcomes if o.status == "fail"]
    control = next(o for o in outcomes if o.check.control)
    passed = not failed and control.status == "pass"
    previous = _read(results_path(config))
    return {"run": run_id, "station": config.appliance.station, "mode": config.firewall.mode,
            "started": started, "finished": finished, "passed": passed, "failed": failed,
            "skipped": [o.check.key for o in outcomes if o.status == "skip"],
            "last_pass": finished if passed else previous.get("last_pass"),
            "note": "audit mode lets vendor traffic through by design: the vendor checks fail"
                    if config.firewall.mode == "audit" else "",
            "checks": [o.to_dict() for o in outcomes]}


def _events(run_id: str, results: dict, outcomes: list[Outcome]) -> list[Event]:
    clock = Clock()
    events = [Event(type="verify.check", stamp=clock.stamp(), source="verify",
                    action="error" if o.status == "fail" else "info", reason=o.check.key,
                    details={"run": run_id, **o.to_dict()}) for o in outcomes]
    events.append(Event(type="verify.run", stamp=clock.stamp(), source="verify",
                        action="info" if results["passed"] else "error",
                        reason="pass" if results["passed"] else "fail",
                        details={k: results[k] for k in ("run", "mode", "started", "finished",
                                                          "passed", "failed", "skipped")}))
    return events


def _read(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _write(path: str, results: dict) -> None:
    atomic_write(path, json.dumps(results, indent=1), mode=0o644)
