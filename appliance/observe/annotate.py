"""What the appliance knows about one attempt: the device, the name it used, the vendor.

One place for every producer (logged drops, flows): the device from its MAC, the
name the device itself got from DNS for that address (or `direct-ip` when it got
none), and the vendor as the judge sees the address: its list entry, or the listed
name that led to it (not a CDN alias met on the way).
"""
from __future__ import annotations

import functools
import ipaddress
import time
from typing import Callable

from ..events.bus import EventBus
from ..policy import Judge
from .attribution import Attribution
from .devices import Devices

DIRECT_IP_EVERY = 600.0        # one bypass.direct_ip event per device, address and port per 10 min


class Annotator:
    def __init__(self, bus: EventBus, judge: Callable[[], Judge], attribution: Attribution,
                 devices: Devices, clock: Callable[[], float] = time.monotonic) -> None:
        self.bus, self.judge = bus, judge
        self.attribution, self.devices, self.clock = attribution, devices, clock
        self._direct_seen: dict[tuple, float] = {}
        self.direct_ip_count = {"block": 0, "allow": 0, "redirect": 0}

    def fields(self, src: str, dst: str, mac: str = "", dns_attributed: bool = True) -> dict:
        """Event fields for an attempt from `src` (a LAN device) to `dst`."""
        if mac:
            self.devices.learn(src, mac, "packet")
        device_id, device_name = self.devices.identify(src)
        out = {"device_id": device_id, "device_name": device_name, "device_ip": src,
               "name": "", "vendor": "", "category": "", "details": {}}
        details = out["details"]
        judge = self.judge()
        verdict = judge.address(dst) if dst else None
        if verdict is not None and verdict.match is not None:
            out["vendor"], out["category"] = verdict.vendor, verdict.category
            if verdict.match.source.type == "ip":
                details["list_entry"] = verdict.match.entry
        provenance = judge.learned.names_for(dst) if dst else []
        if provenance:
            details["learned_names"] = provenance[:8]
        resolved = self.attribution.name_for(src, dst) if dns_attributed else None
        if resolved:
            out["name"] = resolved
        elif dns_attributed and _public(dst):
            details["direct_ip"] = True
        if not out["name"]:       # the listed name that led here (the judge found it already)
            out["name"] = verdict.name if verdict is not None else judge.vendor_name(dst)
        for name in ([out["name"]] if out["name"] else []) + provenance:
            if out["vendor"]:
                break
            block = judge.lists.check_name(name).block      # the vendor whose name led here
            if block:
                out["vendor"], out["category"] = block.source.vendor, block.source.category
        return out

    def flag_direct_ip(self, fields: dict, action: str, dport) -> None:
        """The bypass event for a connection to an address the device never looked up."""
        if not fields["details"].get("direct_ip"):
            return
        self.direct_ip_count[action] = self.direct_ip_count.get(action, 0) + 1
        key = (fields["device_ip"], fields["details"].get("dst"), dport)
        now = self.clock()
        if now - self._direct_seen.get(key, -DIRECT_IP_EVERY) < DIRECT_IP_EVERY:
            return
        self._direct_seen[key] = now
        if len(self._direct_seen) > 100_000:
            self._direct_seen.clear()
        self.bus.emit("bypass.direct_ip", action=action, reason="direct-ip", **{
            **fields, "details": {**fields["details"], "dport": dport}})


@functools.lru_cache(maxsize=4096)          # per attempt: parsing the address was most of it
def _public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return not (ip.is_private and not _documentation(ip)) and not ip.is_multicast and not ip.is_loopback


# Python calls documentation ranges private; no LAN uses them, and the lab's internet does.
_DOCUMENTATION = tuple(ipaddress.ip_network(n) for n in
                       ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"))


def _documentation(ip) -> bool:
    return any(ip in n for n in _DOCUMENTATION if n.version == ip.version)
