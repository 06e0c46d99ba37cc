"""A small NFLOG reader (nfnetlink_log over a raw netlink socket; pyroute2 has none).

One socket binds one `log group` in this network namespace. Overruns (ENOBUFS,
the kernel dropped messages we were too slow for) and gaps in the per-group
sequence numbers are counted, never hidden.
"""
from __future__ import annotations

import asyncio
import errno
import socket
import struct
from dataclasses import dataclass
from typing import Callable

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
MSG_PACKET, MSG_CONFIG = 0, 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
SO_RCVBUFFORCE = 33
_NLA_TYPE_MASK = 0x3FFF


@dataclass(frozen=True, slots=True)
class LoggedPacket:
    prefix: str
    family: int          # 2 = IPv4, 10 = IPv6
    indev: int
    outdev: int
    hwaddr: str          # source MAC ("" when the device has none, e.g. output hook)
    payload: bytes       # the IP packet (up to the copy range)
    seq: int | None
    timestamp: float | None


def _nla(kind: int, data: bytes) -> bytes:
    length = 4 + len(data)
    return struct.pack("=HH", length, kind) + data + b"\0" * ((4 - length % 4) % 4)


def _attrs(data: bytes, offset: int):
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            return
        yield kind & _NLA_TYPE_MASK, data[offset + 4:offset + length]
        offset += (length + 3) & ~3


def parse(data: bytes) -> list[LoggedPacket]:
    """Every packet message in one netlink datagram."""
    packets, offset = [], 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if length < 16:
            break
        if kind == (NFNL_SUBSYS_ULOG << 8) | MSG_PACKET:
            family = data[offset + 16]
            fields = dict(_attrs(data[:offset + length], offset + 20))
            hw = fields.get(8, b"")
            hw_len = struct.unpack_from("!H", hw)[0] if len(hw) >= 4 else 0
            ts = fields.get(3)
            packets.append(LoggedPacket(
                prefix=fields.get(10, b"").rstrip(b"\0").decode(errors="replace"),
                family=family,
                indev=struct.unpack("!I", fields[4])[0] if 4 in fields else 0,
                outdev=struct.unpack("!I", fields[5])[0] if 5 in fields else 0,
                hwaddr=":".join(f"{b:02x}" for b in hw[4:4 + hw_len]),
                payload=fields.get(9, b""),
                seq=struct.unpack("!I", fields[12])[0] if 12 in fields else None,
                timestamp=(lambda s, us: s + us / 1e6)(*struct.unpack("!QQ", ts)) if ts else None))
        offset += (length + 3) & ~3
    return packets


class NflogReader:
    def __init__(self, group: int, rcvbuf: int = 4 << 20, copy_range: int = 0xFFFF) -> None:
        self.group = group
        self.overruns = 0        # ENOBUFS: messages the kernel could not queue for us
        self.gaps = 0            # packets missing by sequence number
        self.received = 0
        self._next_seq: int | None = None
        s = self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except PermissionError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.bind((0, 0))
        self._config(_nla(1, b"\x01"))                                  # CMD: bind this group
        self._config(_nla(2, struct.pack("!IBx", copy_range, 2)))        # MODE: copy the packet
        self._config(_nla(6, struct.pack("!H", 1)))                      # FLAGS: sequence numbers
        self._config(_nla(4, struct.pack("!I", 1)))                      # TIMEOUT: flush in 10 ms
        s.setblocking(False)

    def _config(self, attrs: bytes) -> None:
        body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(self.group)) + attrs
        header = struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_ULOG << 8) | MSG_CONFIG,
                             NLM_F_REQUEST | NLM_F_ACK, 1, 0)
        self.sock.send(header + body)
        reply = self.sock.recv(65536)
        if len(reply) >= 20 and struct.unpack_from("=H", reply, 4)[0] == NLMSG_ERROR:
            code = -struct.unpack_from("=i", reply, 16)[0]
            if code:
                raise OSError(code, f"NFLOG group {self.group}: {errno.errorcode.get(code, code)}"
                              + (" (another process holds it)" if code == errno.EPERM else ""))

    def _count(self, packet: LoggedPacket) -> None:
        self.received += 1
        if packet.seq is not None:
            if self._next_seq is not None and packet.seq > self._next_seq:
                self.gaps += packet.seq - self._next_seq
            self._next_seq = packet.seq + 1

    async def run(self, handle: Callable[[LoggedPacket], None]) -> None:
        """`handle` gets each packet; its `batch_done()`, if it has one, after each datagram."""
        loop = asyncio.get_running_loop()
        batch_done = getattr(handle, "batch_done", lambda: None)
        while True:
            try:
                data = await loop.sock_recv(self.sock, 1 << 18)
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    self.overruns += 1
                    continue
                raise
            for packet in parse(data):
                self._count(packet)
                handle(packet)
            batch_done()
            # sock_recv returns at once while data is queued: without a yield, a flood of
            # drops would starve every other task, the log's sink among them
            await asyncio.sleep(0)

    def close(self) -> None:
        self.sock.close()


class NflogMetrics:
    """The reader's counts, read at scrape time: kernel drops = logged + these + rate-limited."""

    def __init__(self, reader: NflogReader, registry) -> None:
        self.reader = reader
        registry.register(self)

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily
        r = self.reader
        yield CounterMetricFamily("gcsguard_nflog_packets", "Logged packets received from the "
                                  "kernel", value=r.received)
        yield CounterMetricFamily("gcsguard_nflog_overruns", "Receive overruns (ENOBUFS): "
                                  "messages the kernel could not queue", value=r.overruns)
        yield CounterMetricFamily("gcsguard_nflog_sequence_gaps", "Logged packets missing by "
                                  "sequence number", value=r.gaps)
