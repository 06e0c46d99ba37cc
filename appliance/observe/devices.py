"""Device identity: a MAC is a device; the inventory names it; IP addresses are only attributes.

MACs come from DHCP leases, the neighbour table (watched through pyroute2) and the
source MAC of logged packets. A MAC with the locally administered bit set is most
likely randomized (phones do it per network); such devices are flagged, since their
identity may change.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from ..events.bus import EventBus
from ..events.event import PROBE_DEVICE
from ..policy.inventory import Known


def randomized(mac: str) -> bool:
    return bool(int(mac[:2], 16) & 0x02)


@dataclass
class Device:
    mac: str
    first_seen: float
    ips: set[str] = field(default_factory=set)


def arp_table(ip: str, path: str = "/proc/net/arp") -> str | None:
    """The kernel's IPv4 neighbour entry for `ip`, read synchronously (this namespace's)."""
    try:
        with open(path) as f:
            for line in f.read().splitlines()[1:]:
                fields = line.split()
                if len(fields) >= 4 and fields[0] == ip and fields[3] != "00:00:00:00:00:00":
                    return fields[3]
    except OSError:
        pass
    return None


# The verification probe's link (gcsguard verify) always uses this locally administered MAC:
# its records get device_id PROBE_DEVICE so they never count as a device's attempt.
PROBE_MAC = "02:67:63:73:00:01"
FRESH_PER_SECOND = 100        # neighbour-table reads a flood of unknown sources may cause
MAX_DEVICES = 4096            # devices tracked; beyond, new unknown MACs are counted, not kept


class Devices:
    """IP -> MAC -> (device_id, device_name); announces every MAC it sees for the first time."""

    def __init__(self, inventory: dict[str, Known], bus: EventBus, report_unknown: bool = True,
                 clock: Callable[[], float] = time.time,
                 lookup: Callable[[str], str | None] = arp_table, max_devices: int = MAX_DEVICES) -> None:
        self.inventory, self.bus, self.report_unknown, self.clock = inventory, bus, report_unknown, clock
        self.lookup, self.max_devices = lookup, max_devices
        self.untracked = 0        # new unknown MACs refused because the table was full
        self.by_mac: dict[str, Device] = {}
        self.mac_of: dict[str, str] = {}                 # ip -> mac
        self._missed: dict[str, float] = {}             # ip -> when the table last lacked it
        self._fresh = [0.0, 0]                          # second, fresh look-ups in it

    def identify(self, ip: str, fresh: bool = False) -> tuple[str, str]:
        """(device_id, device_name) for a LAN address, ("", "") while its MAC is unknown.
        `fresh`: a packet from `ip` has just arrived (a DNS query), so the kernel has its
        neighbour entry now, whatever an earlier miss said (stale flows of an address that
        left ask every few seconds): look again, within a global budget per second."""
        mac = self.mac_of.get(ip)
        if mac is None:
            mac = self._look_up(ip, fresh)
        if mac is None:
            return "", ""
        if mac == PROBE_MAC:
            return PROBE_DEVICE, "verification-probe"
        known = self.inventory.get(mac)
        return f"mac:{mac}", known.name if known else ""

    def _look_up(self, ip: str, fresh: bool = False) -> str | None:
        """A device's first packet can beat the neighbour event (the kernel learnt its MAC from
        its ARP request a moment before): ask the table, at most once a second per address
        (fresh look-ups: at most FRESH_PER_SECOND in all)."""
        now = self.clock()
        if fresh and int(now) != self._fresh[0]:
            self._fresh = [int(now), 0]
        if fresh and self._fresh[1] < FRESH_PER_SECOND:
            self._fresh[1] += 1
        elif now - self._missed.get(ip, -2.0) < 1.0:
            return None
        mac = self.lookup(ip)
        if mac is None:
            if len(self._missed) > 10_000:
                self._missed.clear()
            self._missed[ip] = now
            return None
        self.learn(ip, mac, "neighbour")
        return self.mac_of.get(ip)

    def learn(self, ip: str, mac: str, how: str) -> None:
        """An (IP, MAC) pair from a lease, the neighbour table or a packet."""
        mac = mac.lower()
        if not mac or mac == "00:00:00:00:00:00" or mac.startswith(("33:33", "01:00:5e", "ff:ff")):
            return
        if mac == PROBE_MAC:          # known by its address, never a device (nor counted as one)
            self.mac_of[ip] = mac
            return
        device = self.by_mac.get(mac)
        if device is None and len(self.by_mac) >= self.max_devices and mac not in self.inventory:
            self.untracked += 1     # a random-MAC flood: counted; inventory devices always kept
            if self.untracked == 1 or self.untracked % 1000 == 0:
                self.bus.emit("device.table_full", action="error", reason="max-devices",
                              details={"max_devices": self.max_devices, "untracked": self.untracked})
            return
        self.mac_of[ip] = mac
        if device is None:
            device = self.by_mac[mac] = Device(mac, self.clock())
            self._announce(mac, ip, how)
        device.ips.add(ip)

    def _announce(self, mac: str, ip: str, how: str) -> None:
        known = self.inventory.get(mac)
        details = {"mac": mac, "ip": ip, "how": how, "randomized_mac": randomized(mac)}
        if known:
            details.update(role=known.role, expected_vendor=known.expected_vendor)
            self.bus.emit("device.seen", reason="inventory", device_id=f"mac:{mac}",
                          device_name=known.name, device_ip=ip, details=details)
        elif self.report_unknown:
            self.bus.emit("device.unknown", action="error",
                          reason="randomized-mac" if randomized(mac) else "not-in-inventory",
                          device_id=f"mac:{mac}", device_ip=ip, details=details)

    def lease(self, event) -> None:
        """The bus's dhcp.lease events keep the table current."""
        mac = event.details.get("mac", "")
        if event.details.get("op") in ("add", "old") and mac:
            self.learn(event.device_ip, mac, "dhcp")
        elif event.details.get("op") == "del":
            self.mac_of.pop(event.device_ip, None)
