"""What a logged packet means: one Event per packet the ruleset logged, with its reason.

The reason is the log prefix the renderer gave the rule (`gcsguard <reason> `); the
device, the name it used and the vendor come from the Annotator.
"""
from __future__ import annotations

import socket
import struct
import time

from ..dns import wire
from ..events.bus import EventBus
from ..firewall.render import PREFIX
from ..policy.reasons import BY_PREFIX, UNKNOWN_PREFIX
from .annotate import Annotator
from .evidence import PcapStore
from .nflog import LoggedPacket

PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}


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
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    out = {"src": socket.inet_ntop(family, src), "dst": socket.inet_ntop(family, dst),
           "proto": PROTOCOLS.get(proto, str(proto))}
    if proto in (6, 17) and len(payload) >= header + 4:
        out["sport"], out["dport"] = struct.unpack_from("!HH", payload, header)
        out["l4_offset"] = header
    elif proto == 58 and len(payload) > header:
        out["icmp_type"] = payload[header]
    return out


_IFNAMES: dict[int, tuple[str, float]] = {}
IFNAME_TTL = 5.0        # seconds: an interface re-created under a new index is named within this


def _ifname(index: int) -> str:
    """The interface's name, cached: if_indextoname opens a socket and asks the kernel, and
    was a third of the cost of a logged packet."""
    if not index:
        return ""
    now = time.monotonic()
    known = _IFNAMES.get(index)
    if known is not None and now - known[1] < IFNAME_TTL:
        return known[0]
    try:
        name = socket.if_indextoname(index)
    except OSError:
        name = str(index)
    if len(_IFNAMES) > 1024:
        _IFNAMES.clear()
    _IFNAMES[index] = (name, now)
    return name


class PacketEvents:
    def __init__(self, bus: EventBus, annotator: Annotator, lan_interfaces: set[str],
                 evidence: PcapStore | None = None, is_local=lambda ip: False) -> None:
        self.bus, self.annotator, self.lan, self.evidence = bus, annotator, lan_interfaces, evidence
        self.is_local = is_local
        self.logged: dict[str, int] = {}           # reason -> packets received from NFLOG

    def batch_done(self) -> None:
        """After each datagram of the kernel's log: the evidence of its packets written."""
        if self.evidence is not None:
            self.evidence.flush()

    def __call__(self, packet: LoggedPacket) -> None:
        if not packet.prefix.startswith(PREFIX):
            return
        reason = packet.prefix[len(PREFIX):].strip()
        self.logged[reason] = self.logged.get(reason, 0) + 1
        meaning = BY_PREFIX.get(reason, UNKNOWN_PREFIX)     # one table with the ruleset's prefixes
        kind, action = meaning.event, meaning.action
        flow = five_tuple(packet.payload)
        offset = flow.pop("l4_offset", None)
        src, dst = flow.get("src", ""), flow.get("dst", "")
        own = self.is_local(src)             # the appliance's own (the gate's upstream legs)
        egress = kind in ("egress.blocked", "egress.audit") and not own
        indev = _ifname(packet.indev)
        fields = self.annotator.fields(src, dst, packet.hwaddr if indev in self.lan else "",
                                       dns_attributed=egress)
        if own:
            fields.update(device_id="", device_name="", device_ip="")
            fields["details"]["from"] = "appliance"
        fields["details"].update(flow, **{"in": indev, "out": _ifname(packet.outdev)})
        if packet.hwaddr:
            fields["details"]["mac"] = packet.hwaddr
        if self.evidence is not None and packet.payload:
            fields["details"]["pcap"] = self.evidence.write(packet.payload, packet.timestamp)
        if reason == "dns-bypass" and flow.get("proto") == "udp" and offset is not None:
            try:
                fields["name"] = wire.parse_query(packet.payload[offset + 8:]).name
            except (wire.WireError, ValueError, IndexError):
                pass
        self.bus.emit(kind, action=action, reason=reason, **fields)
        if egress:
            self.annotator.flag_direct_ip(fields, action if action == "block" else "allow",
                                          flow.get("dport"))
