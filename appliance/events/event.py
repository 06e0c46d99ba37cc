"""The one record every part of gcsguard emits (documented in docs/events.md).

Producers build an `Event` with what they observed; the `Stamp` (time, monotonic
clock, boot id, clock-sync state) is taken from a `Clock` at creation and the
`seq` is given by the bus on publish, so gaps in `seq` show lost events.
The JSON form is the contract: add optional fields freely, never rename or
change the meaning of one without bumping SCHEMA_VERSION.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple

SCHEMA_VERSION = 1

# Closed vocabularies: metrics use these as labels, so they must stay bounded.
ACTIONS = frozenset({"allow", "block", "redirect", "log", "info", "error"})
# The device_id of the verification probe's traffic (gcsguard verify): never a device's attempt.
PROBE_DEVICE = "probe"


class Stamp(NamedTuple):           # a tuple: made for every event, at a third of a dataclass's cost
    time: str            # RFC 3339 UTC with microseconds, e.g. 2026-11-26T06:48:14.123456Z
    mono_ns: int         # CLOCK_MONOTONIC: orders events even when the wall clock jumps
    boot_id: str         # kernel boot id: mono_ns is only comparable within one boot
    clock: str           # "synced" | "unsynced" | "unknown": a Pi has no RTC


@dataclass(frozen=True, slots=True)
class Event:
    type: str                       # dotted, e.g. "dns.query", "egress.blocked", "config.loaded"
    stamp: Stamp
    action: str = "info"            # one of ACTIONS
    reason: str = ""                # short bounded code, e.g. "vendor-list", "bypass", "parse-error"
    device_id: str = ""             # "mac:aa:bb:cc:dd:ee:ff", "appliance", "probe", or "" when unknown
    device_name: str = ""           # from the configured inventory
    device_ip: str = ""             # an attribute only: DHCP reuses addresses
    name: str = ""                  # the domain/host the attempt was about, if any
    vendor: str = ""
    category: str = ""
    source: str = "appliance"       # producing process: "appliance", "gate", ...
    seq: int = 0                    # set by the bus
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"event action {self.action!r} not in {sorted(ACTIONS)}")
        if not self.type or " " in self.type:
            raise ValueError(f"event type {self.type!r} must be a non-empty dotted word")

    def with_seq(self, seq: int) -> "Event":
        return dataclasses.replace(self, seq=seq)

    def to_dict(self) -> dict[str, Any]:
        s = self.stamp
        d: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION, "time": s.time, "seq": self.seq,
            "boot_id": s.boot_id, "mono_ns": s.mono_ns, "clock": s.clock,
            "type": self.type, "action": self.action, "source": self.source,
        }
        for key in ("reason", "device_id", "device_name", "device_ip", "name", "vendor", "category"):
            value = getattr(self, key)
            if value:
                d[key] = value
        if self.details:
            d["details"] = dict(self.details)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Event":
        """Inverse of to_dict; raises ValueError naming the bad field."""
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"schema_version {version!r} is not {SCHEMA_VERSION}")
        try:
            stamp = Stamp(time=_str(d, "time"), mono_ns=_int(d, "mono_ns"),
                          boot_id=_str(d, "boot_id"), clock=_str(d, "clock"))
            kwargs = {k: _str(d, k) for k in ("reason", "device_id", "device_name", "device_ip",
                                               "name", "vendor", "category") if k in d}
            details = d.get("details", {})
            if not isinstance(details, dict):
                raise ValueError("field 'details' must be an object")
            return cls(type=_str(d, "type"), stamp=stamp, action=_str(d, "action"),
                       source=_str(d, "source"), seq=_int(d, "seq"), details=details, **kwargs)
        except KeyError as e:
            raise ValueError(f"missing field {e.args[0]!r}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False, sort_keys=False)


def _str(d: Mapping[str, Any], key: str) -> str:
    value = d[key]
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be a string")
    return value


def _int(d: Mapping[str, Any], key: str) -> int:
    value = d[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"field {key!r} must be an integer")
    return value
