"""What an isolation report states, gathered from the log records of a period. Pure.

The claim is "no data left to vendor endpoints from these devices between T1 and T2".
It is backed by the verification runs, the log's integrity and continuity, and the
policy in force; it is weakened by anything that makes the log less than the whole
truth (clock not synchronized, records lost, audit mode, the appliance down, the
firewall opened) and contradicted by vendor traffic that was let through. It cannot
be made at all when the log itself is not VERIFIED: broken, unverifiable or missing.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..events.clock import parse_rfc3339, rfc3339
from ..events.event import PROBE_DEVICE
from ..metrics_sink import attempt_layer
from .query import device_label

LET_THROUGH = ("allow", "log")
POLICY_TYPES = ("config.loaded", "lists.loaded", "firewall.applied", "lists.updated")
BYPASS_REASONS = {"dot", "quic", "bypass-address", "httpdns-request", "dns-bypass"}
NOTABLE_LIMIT = 200
START_RECORDS_S = 30.0     # a starting daemon writes records (devices, links) before it says so


@dataclass
class Facts:
    station: str
    since: float
    until: float
    records: int = 0
    attempts: Counter = field(default_factory=Counter)          # (vendor, layer, device, action)
    hourly: Counter = field(default_factory=Counter)            # (hour, blocked|let through)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    let_through: list[dict] = field(default_factory=list)       # vendor traffic not blocked
    notable: list[dict] = field(default_factory=list)
    notable_total: int = 0
    runs: list[dict] = field(default_factory=list)              # verify.run details
    policy: list[dict] = field(default_factory=list)            # loads, in order
    reservations: dict[str, list[str]] = field(default_factory=dict)   # kind -> each, in order
    integrity: dict[str, Any] = field(default_factory=dict)     # from the log's verification

    @property
    def verdict(self) -> str:
        """Evidence first: on a log that is not VERIFIED, even vendor traffic seen in it
        proves nothing either way."""
        if not self.integrity.get("ok", False):
            return "unsupported"
        if self.let_through:
            return "contradicted"
        return "supported with reservations" if self.reservations else "supported"

    def reserve(self, kind: str, text: str) -> None:
        self.reservations.setdefault(kind, []).append(text)

    @property
    def weakening(self) -> list[str]:
        return [text for texts in self.reservations.values() for text in texts]


def gather(rows: Iterable[dict[str, Any]], station: str, since: float, until: float,
           integrity: dict[str, Any]) -> Facts:
    f = Facts(station, since, until, integrity=integrity)
    unsynced: list[float] = []
    audit_since: float | None = None
    stopped: tuple[float, str] | None = None
    last: tuple[float, str] | None = None    # the previous record in the period
    running = False                          # an appliance.started in the period, no stop since
    in_force: dict[str, dict] = {}       # the loads before the period: the policy at its start
    for r in rows:
        t = parse_rfc3339(r["time"])
        if t < since and r["type"] in POLICY_TYPES:
            in_force[r["type"]] = _policy(r, " (in force at the start)")
        if not since <= t < until:
            continue
        f.records += 1
        kind, action, details = r["type"], r.get("action", ""), r.get("details") or {}
        if r.get("clock", "synced") != "synced":
            unsynced.append(t)
        _attempt(f, r, t, kind, action)
        if kind == "appliance.stopped":
            stopped, running = (t, r["time"]), False
        elif kind == "appliance.started":
            if stopped:
                f.reserve("down", f"The appliance was down from {stopped[1]} to {r['time']} "
                                   f"({(t - stopped[0]) / 60:.0f} min)")
            elif last and (running or t - last[0] > START_RECORDS_S):
                f.reserve("crash", f"The appliance started again at {r['time']} without a stop "
                                   f"record (crash or power loss): down for an unknown time after "
                                   f"its last record at {last[1]}")
            stopped, running = None, True
        elif kind == "verify.run":
            f.runs.append({"time": r["time"], **details})
        elif kind in POLICY_TYPES:
            f.policy.append(_policy(r))
            if kind == "firewall.applied":
                if details.get("mode") == "audit" and audit_since is None:
                    audit_since = t
                    f.reserve("audit", f"Audit mode (vendor traffic let through and logged) "
                                       f"from {r['time']}")
                elif details.get("mode") != "audit":
                    audit_since = None
        elif kind == "firewall.opened":
            f.reserve("opened", f"The firewall was opened by an operator at {r['time']} "
                               f"({details.get('why') or 'no reason given'})")
        elif kind == "events.dropped":
            f.reserve("dropped", f"Events were dropped before reaching the log at {r['time']} "
                               f"({details.get('dropped_by_sink')})")
        elif kind == "log.loss":
            f.reserve("lost", f"{details.get('records_lost')} records were lost between "
                               f"{details.get('first_time')} and {details.get('last_time')} "
                               f"(log writes failed)")
        elif kind == "firewall.accounting" and details.get("unaccounted"):
            f.reserve("unaccounted", f"{details['unaccounted']} dropped packets were counted by the kernel "
                               f"but not logged (summary at {r['time']})")
        last = (t, r["time"])
    f.policy[:0] = in_force.values()
    if in_force.get("firewall.applied", {}).get("mode") == "audit" and not any(
            w.startswith("Audit mode") for w in f.weakening):
        f.reserve("audit", "Audit mode (vendor traffic let through and logged) at the start of the period")
    if stopped:
        f.reserve("down", f"The appliance stopped at {stopped[1]} and no start follows in the period")
    if unsynced:
        f.reserve("clock", f"{len(unsynced)} records were written while the clock was not "
                           f"synchronized (between {rfc3339(min(unsynced), False)} and {rfc3339(max(unsynced), False)}): "
                           "their times are the appliance's estimate")
    failed = [run for run in f.runs if not run.get("passed")]
    if not f.runs:
        f.reserve("runs", "No verification run in the period: isolation was not tested")
    elif failed:
        checks = Counter(c for run in failed for c in run.get("failed", []))
        f.reserve("runs", f"{len(failed)} of {len(f.runs)} verification runs failed "
                           f"({', '.join(f'{c} x{n}' for c, n in checks.most_common())})")
    if not integrity.get("ok", False):
        f.reservations = {"evidence": [f"The log is {integrity.get('outcome', 'not verified')}: "
                                       + "; ".join(integrity.get("problems", [])[:3])],
                          **f.reservations}
    return f


def _policy(r: dict, note: str = "") -> dict:
    details = r.get("details") or {}
    return {"time": r["time"], "type": r["type"] + note, "sha256": details.get("sha256", ""),
            "mode": details.get("mode", "")}


def _attempt(f: Facts, r: dict, t: float, kind: str, action: str) -> None:
    if r.get("device_id") == PROBE_DEVICE or kind.startswith(("verify.", "alert.")):
        return
    device = device_label(r)
    if kind == "device.unknown" or kind == "bypass.direct_ip" or r.get("reason") in BYPASS_REASONS:
        f.notable_total += 1
        if len(f.notable) < NOTABLE_LIMIT:
            f.notable.append(r)
    if device and kind.startswith(("dns.", "egress.", "bypass.", "tls.", "http.", "tcp.")):
        d = f.devices.setdefault(device, {"first": r["time"], "last": r["time"], "blocked": 0,
                                          "let_through": 0})
        d["last"] = r["time"]
    layer = attempt_layer(kind, action, r.get("reason", ""), r.get("device_id", ""))
    if not layer or not (r.get("vendor") or action == "block"):
        return
    let = action in LET_THROUGH
    f.attempts[(r.get("vendor") or "(bypass)", layer, device or "unknown", "let through" if let
                else "blocked")] += 1
    f.hourly[(rfc3339(t)[:13], "let through" if let else "blocked")] += 1
    if device:
        f.devices[device]["let_through" if let else "blocked"] += 1
    if let and r.get("vendor") and kind != "dns.query":
        f.let_through.append(r)
