"""conntrack over raw netlink (ctnetlink): NEW and DESTROY events, and table dumps.

pyroute2 decodes every attribute of every message into Python objects: about 550 flows/s
on this machine, and a progress pass looked each open flow up with it. Here only the
attributes a `Flow` holds are read, with `struct` at known offsets; the event socket is
drained on each wake-up rather than awaited message by message; and a progress pass is
one dump. `parse` gives the same `Flow` for the same bytes as pyroute2's decoder
(tests/observe/test_ctevents.py).
"""
from __future__ import annotations

import errno
import socket
import struct
from dataclasses import dataclass
from typing import Callable

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
CT_GET = 1                                # IPCTNL_MSG_CT_GET
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
GROUP_NEW, GROUP_DESTROY = 1, 3          # NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_DESTROY
SO_RCVBUFFORCE = 33
_TYPE = 0x3FFF                            # attribute type without the nested/byte-order flags

# CTA_* attribute numbers (linux/netfilter/nfnetlink_conntrack.h)
TUPLE_ORIG, TUPLE_REPLY, PROTOINFO, COUNTERS_ORIG, COUNTERS_REPLY, ID, TIMESTAMP = 1, 2, 4, 9, 10, 12, 20
CTA_MARK, CTA_MARK_MASK = 8, 21
TUPLE_IP, TUPLE_PROTO = 1, 2
IP_V4_SRC, IP_V4_DST, IP_V6_SRC, IP_V6_DST = 1, 2, 3, 4
PROTO_NUM, PROTO_SRC_PORT, PROTO_DST_PORT = 1, 2, 3
COUNTERS_PACKETS, COUNTERS_BYTES, COUNTERS32_PACKETS, COUNTERS32_BYTES = 1, 2, 3, 4
PROTOINFO_TCP, PROTOINFO_TCP_STATE = 1, 1
TIMESTAMP_START, TIMESTAMP_STOP = 1, 2

TCP_FIN_WAIT = 4              # conntrack's TCP states from here on (to CLOSE, 8) are closing


@dataclass
class Flow:
    id: int
    src: str
    dst: str
    proto: int
    sport: int | None
    dport: int | None
    redirected: bool           # the reply comes from somewhere else than dst (DNAT: our resolver)
    bytes_out: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    packets_in: int = 0
    start_ns: int = 0
    stop_ns: int = 0
    tcp_state: int | None = None   # from a dump or a lookup (DESTROY events carry none)

    @property
    def closing(self) -> bool:
        return self.tcp_state is not None and self.tcp_state >= TCP_FIN_WAIT


_unpack_attr = struct.Struct("=HH").unpack_from
_unpack_msg = struct.Struct("=IH").unpack_from


def _attrs(data: bytes, start: int, end: int) -> dict[int, tuple[int, int]]:
    """{type: (offset, end)} of the attributes in data[start:end], values not copied."""
    found, offset = {}, start
    while offset + 4 <= end:
        length, kind = _unpack_attr(data, offset)
        if length < 4:
            break
        found[kind & _TYPE] = (offset + 4, offset + length)
        offset += (length + 3) & ~3
    return found


def _int(data: bytes, span: tuple[int, int] | None) -> int | None:
    return None if span is None else int.from_bytes(data[span[0]:span[1]], "big")


def _tuple(data: bytes, span: tuple[int, int]) -> tuple[str, str, dict]:
    parts = _attrs(data, *span)
    ip = _attrs(data, *parts[TUPLE_IP]) if TUPLE_IP in parts else {}
    proto = _attrs(data, *parts[TUPLE_PROTO]) if TUPLE_PROTO in parts else {}
    for src, dst, family in ((IP_V4_SRC, IP_V4_DST, socket.AF_INET), (IP_V6_SRC, IP_V6_DST, socket.AF_INET6)):
        if src in ip:
            return (socket.inet_ntop(family, data[ip[src][0]:ip[src][1]]),
                    socket.inet_ntop(family, data[ip[dst][0]:ip[dst][1]]), proto)
    return "", "", proto


def _id(data: bytes, offset: int, length: int) -> int | None:
    return _int(data, _attrs(data, offset + 20, offset + length).get(ID))


def parse_flow(data: bytes, offset: int, length: int) -> tuple[int, Flow]:
    """(message type: 0 NEW, 2 DELETE; the flow) of the message at data[offset:offset+length]."""
    kind = _unpack_msg(data, offset)[1] & 0xFF
    top = _attrs(data, offset + 20, offset + length)          # after nlmsghdr and nfgenmsg
    src, dst, proto = _tuple(data, top[TUPLE_ORIG])
    reply_src = _tuple(data, top[TUPLE_REPLY])[0] if TUPLE_REPLY in top else ""
    flow = Flow(id=_int(data, top.get(ID)) or 0, src=src, dst=dst,
                proto=_int(data, proto.get(PROTO_NUM)) or 0,
                sport=_int(data, proto.get(PROTO_SRC_PORT)), dport=_int(data, proto.get(PROTO_DST_PORT)),
                redirected=bool(reply_src and reply_src != dst))
    for attr, direction in ((COUNTERS_ORIG, "out"), (COUNTERS_REPLY, "in")):
        if attr in top:
            c = _attrs(data, *top[attr])
            packets = _int(data, c.get(COUNTERS_PACKETS) or c.get(COUNTERS32_PACKETS)) or 0
            octets = _int(data, c.get(COUNTERS_BYTES) or c.get(COUNTERS32_BYTES)) or 0
            if direction == "out":
                flow.packets_out, flow.bytes_out = packets, octets
            else:
                flow.packets_in, flow.bytes_in = packets, octets
    if PROTOINFO in top:
        tcp = _attrs(data, *top[PROTOINFO]).get(PROTOINFO_TCP)
        if tcp is not None:
            flow.tcp_state = _int(data, _attrs(data, *tcp).get(PROTOINFO_TCP_STATE))
    if TIMESTAMP in top:
        stamp = _attrs(data, *top[TIMESTAMP])
        flow.start_ns = _int(data, stamp.get(TIMESTAMP_START)) or 0
        flow.stop_ns = _int(data, stamp.get(TIMESTAMP_STOP)) or 0
    return kind, flow


def parse(data: bytes) -> list[tuple[int, Flow]]:
    """Every conntrack message in one netlink datagram; others (errors, done) are skipped."""
    out, offset = [], 0
    while offset + 20 <= len(data):
        length, kind = _unpack_msg(data, offset)
        if length < 16 or offset + length > len(data):
            break
        if kind >> 8 == NFNL_SUBSYS_CTNETLINK:
            out.append(parse_flow(data, offset, length))
        offset += (length + 3) & ~3
    return out


def dump(wanted: set[int] | None = None, rcvbuf: int = 4 << 20) -> list[Flow]:
    """Every entry of this namespace's table, IPv4 and IPv6, or only those whose id is in
    `wanted` (the rest are not decoded). Blocking: a short read."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.bind((0, 0))
        s.settimeout(5.0)
        # None wanted: a filter no entry passes ((mark & 0) == 1). The kernel still walks the
        # table, reaping expired entries (their DESTROY events come on time), and sends nothing.
        none = b"" if wanted is None or wanted else (
            struct.pack("=HHI", 8, CTA_MARK, socket.htonl(1)) + struct.pack("=HHI", 8, CTA_MARK_MASK, 0))
        s.send(struct.pack("=IHHIIBBH", 20 + len(none), (NFNL_SUBSYS_CTNETLINK << 8) | CT_GET,
                           NLM_F_REQUEST | NLM_F_DUMP, 1, 0, socket.AF_UNSPEC, 0, 0) + none)
        flows = []
        while True:
            data = s.recv(1 << 20)
            offset = 0
            while offset + 16 <= len(data):
                length, kind = _unpack_msg(data, offset)
                if kind == NLMSG_DONE:
                    return flows
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", data, offset + 16)[0]
                    if code:
                        raise OSError(code, f"conntrack dump: {errno.errorcode.get(code, code)}")
                elif kind >> 8 == NFNL_SUBSYS_CTNETLINK and (
                        wanted is None or _id(data, offset, length) in wanted):
                    flows.append(parse_flow(data, offset, length)[1])
                if length < 16:
                    break
                offset += (length + 3) & ~3


class EventSocket:
    """The multicast socket; `drain` reads what is queued and says whether the kernel lost some."""

    def __init__(self, rcvbuf: int) -> None:
        s = self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except PermissionError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.bind((0, (1 << (GROUP_NEW - 1)) | (1 << (GROUP_DESTROY - 1))))
        s.setblocking(False)

    def drain(self, handle: Callable[[int, Flow], None], limit: int = 512) -> bool:
        """Hand every queued event to `handle` (at most `limit` datagrams, so the loop gets
        its turn). False if the kernel dropped events (ENOBUFS) since the last read."""
        recv = self.sock.recv
        for _ in range(limit):
            try:
                data = recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    return False
                raise
            for kind, flow in parse(data):
                handle(kind, flow)
        return True

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()
