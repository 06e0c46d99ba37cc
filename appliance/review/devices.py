"""Per-device views of a log: the device list, and one device's timeline.

Both read only the log (a copy is enough): what an auditor has. The inventory, when
given, adds its names and lists devices never seen.
"""
from __future__ import annotations

from typing import Any, Iterable

from ..events.event import PROBE_DEVICE
from .query import device_label

DEVICE_COLUMNS = ("device", "name", "mac", "ips", "first_seen", "last_seen", "dns", "blocked",
                  "allowed_flows", "direct_ip", "bytes_out", "status")
TIMELINE_COLUMNS = ("time", "type", "action", "reason", "name", "destination", "what")
# What a device did: its DNS, its attempts, its flows, its leases (not the appliance's own work).
DEVICE_TYPES = ("dns.", "egress.", "bypass.", "dhcp.lease", "device.")


def _is_device_record(r: dict[str, Any]) -> bool:
    """A device's own record: not the appliance's work, nor the verification probe's."""
    return (bool(r.get("device_ip") or r.get("device_id")) and r.get("device_id") != PROBE_DEVICE
            and r.get("type", "").startswith(DEVICE_TYPES))


def devices(rows: Iterable[dict[str, Any]], inventory: dict | None = None) -> list[dict[str, Any]]:
    inventory = inventory or {}
    table: dict[str, dict[str, Any]] = {}
    for r in rows:
        if not _is_device_record(r):
            continue
        key = r.get("device_id") or r.get("device_ip")
        d = table.setdefault(key, {"device": key, "name": r.get("device_name", ""),
                                   "mac": key[4:] if key.startswith("mac:") else "", "ips": set(),
                                   "first_seen": r["time"], "last_seen": r["time"], "dns": 0,
                                   "blocked": 0, "allowed_flows": 0, "direct_ip": 0, "bytes_out": 0,
                                   "status": ""})
        d["last_seen"] = r["time"]
        d["name"] = d["name"] or r.get("device_name", "")
        if r.get("device_ip"):
            d["ips"].add(r["device_ip"])
        t, details = r["type"], r.get("details") or {}
        if t == "dns.query":
            d["dns"] += 1
        elif t == "egress.blocked":
            d["blocked"] += 1
        elif t == "egress.flow" and r.get("reason") == "new":
            d["allowed_flows"] += 1
        elif t == "egress.flow" and r.get("reason") == "end":
            d["bytes_out"] += details.get("bytes_out", 0)
        elif t == "bypass.direct_ip":
            d["direct_ip"] += 1
        elif t == "device.unknown":
            d["status"] = "unknown (randomized MAC)" if details.get("randomized_mac") else "unknown"
    for mac, known in inventory.items():
        key = f"mac:{mac}"
        if key not in table:
            table[key] = {"device": key, "name": known.name, "mac": mac, "ips": set(), "first_seen": "",
                          "last_seen": "", "dns": 0, "blocked": 0, "allowed_flows": 0, "direct_ip": 0,
                          "bytes_out": 0, "status": "never seen"}
        else:
            table[key]["name"] = known.name
            table[key]["status"] = table[key]["status"] or "inventory"
    return [{**d, "ips": " ".join(sorted(d["ips"]))} for _, d in sorted(table.items())]


def timeline(rows: Iterable[dict[str, Any]], device: str) -> Iterable[dict[str, Any]]:
    """One device's records in order: DNS, drops, flows and leases interleaved."""
    for r in rows:
        if _is_device_record(r) and device in (r.get("device_id"), r.get("device_name"),
                                               r.get("device_ip"), device_label(r)):
            yield timeline_row(r)


def timeline_row(r: dict[str, Any]) -> dict[str, Any]:
    d = r.get("details") or {}
    destination = f"{d['dst']}:{d['dport']}" if d.get("dst") and d.get("dport") else d.get("dst", "")
    what = []
    if r["type"] == "dns.query":
        what.append(d.get("verdict", ""))
        what += d.get("answer", [])[:3]
    if "bytes_out" in d:
        what.append(f"{d['bytes_out']} B out, {d.get('bytes_in', 0)} B in")
    if d.get("direct_ip"):
        what.append("direct-ip")
    if r.get("vendor"):
        what.append(r["vendor"])
    return {"time": r.get("time", ""), "type": r["type"], "action": r.get("action", ""),
            "reason": r.get("reason", ""), "name": r.get("name", ""), "destination": destination,
            "what": " ".join(str(w) for w in what if w)}
