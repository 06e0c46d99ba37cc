"""What a logged packet means: one Event per packet the ruleset logged, with its reason.

The reason is the log prefix the renderer gave the rule (`gcsguard <reason> `).
Attribution here is what the lists and the learned addresses say about the
destination; per-device names from DNS come with the observation work.
"""
from __future__ import annotations

import ipaddress
import socket
import struct
from typing import Callable

from ..dns import wire
from ..events.bus import EventBus
from ..firewall.learned import LearnedAddresses
from ..firewall.render import PREFIX
from ..lists import ListSet
from .nflog import LoggedPacket

PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}
# reason -> (event type, action); anything else is an egress refusal.
KINDS = {"dns-bypass": ("dns.bypass", "redirect"), "audit-vendor": ("egress.audit", "log"),
         "rogue-ra": ("lan.rogue_ra", "block"), "input": ("input.blocked", "block"),
         "wan-input": ("input.blocked", "block"), "inbound": ("inbound.blocked", "block"),
         "appliance-egress": ("appliance.egress_blocked", "block")}


def five_tuple(payload: bytes) -> dict:
    """src, dst, proto, sport, dport of an IPv4 or IPv6 packet (what the copy range holds)."""
    if not payload:
        return {}
    version = payload[0] >> 4
    if version == 4 and len(payload) >= 20:
        header = (payload[0] & 0xF) * 4
        proto, src, dst = payload[9], payload[12:16], payload[16:20]
    elif version == 6 and len(payload) >= 40:
        header, proto, src, dst = 40, payload[6], payload[8:24], payload[24:40]
    else:
        return {}
    out = {"src": str(ipaddress.ip_address(src)), "dst": str(ipaddress.ip_address(dst)),
           "proto": PROTOCOLS.get(proto, str(proto))}
    if proto in (6, 17) and len(payload) >= header + 4:
        out["sport"], out["dport"] = struct.unpack_from("!HH", payload, header)
        out["l4_offset"] = header
    elif proto == 58 and len(payload) > header:
        out["icmp_type"] = payload[header]
    return out


def _ifname(index: int) -> str:
    if not index:
        return ""
    try:
        return socket.if_indextoname(index)
    except OSError:
        return str(index)


class PacketEvents:
    def __init__(self, bus: EventBus, lists: Callable[[], ListSet], learned: LearnedAddresses) -> None:
        self.bus, self.lists, self.learned = bus, lists, learned

    def __call__(self, packet: LoggedPacket) -> None:
        if not packet.prefix.startswith(PREFIX):
            return
        reason = packet.prefix[len(PREFIX):].strip()
        kind, action = KINDS.get(reason, ("egress.blocked", "block"))
        flow = five_tuple(packet.payload)
        offset = flow.pop("l4_offset", None)
        details = {**flow, "in": _ifname(packet.indev), "out": _ifname(packet.outdev)}
        if packet.hwaddr:
            details["mac"] = packet.hwaddr
        name = vendor = category = ""
        if reason == "dns-bypass" and flow.get("proto") == "udp" and offset is not None:
            try:
                name = wire.parse_query(packet.payload[offset + 8:]).name
            except (wire.WireError, ValueError, IndexError):
                pass
        dst = flow.get("dst")
        if dst and reason != "dns-bypass":
            match = self.lists().ips.match(dst)
            if match:
                vendor, category = match.source.vendor, match.source.category
                details["list_entry"] = match.entry
            learned = self.learned.about(dst)
            if learned:
                names = sorted({n for about in learned.values() for n in about["names"]})
                name, details["learned_names"] = names[0], names[:8]
                block = self.lists().check_name(name).block
                if block and not vendor:
                    vendor, category = block.source.vendor, block.source.category
        self.bus.emit(kind, action=action, reason=reason, device_ip=flow.get("src", ""),
                      name=name, vendor=vendor, category=category, details=details)
