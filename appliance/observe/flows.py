"""Allowed flows from conntrack: one `egress.flow` event when a flow starts and when it
ends (bytes and packets each way, duration), and a progress record for each interval in
which an open flow moved bytes. A TCP flow that is closing gets none: conntrack keeps it
through TIME_WAIT (two minutes by default), and its end record carries the totals.

After an overrun (ENOBUFS: the kernel dropped events we were too slow for) the table
is read again and the gap is recorded, never hidden.
"""
from __future__ import annotations

import asyncio
import errno
import math
import socket
import time
from dataclasses import dataclass
from typing import Callable

NEW, DESTROY = 0, 2
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


def _ip(tuple_attr) -> tuple[str, str]:
    ip = tuple_attr.get_attr("CTA_TUPLE_IP")
    for version in ("V4", "V6"):
        src = ip.get_attr(f"CTA_IP_{version}_SRC")
        if src:
            return src, ip.get_attr(f"CTA_IP_{version}_DST")
    return "", ""


def parse(message) -> tuple[int, Flow]:
    """(NEW or DESTROY, the flow) from a raw nfct message."""
    kind = message["header"]["type"] & 0xFF
    orig, reply = message.get_attr("CTA_TUPLE_ORIG"), message.get_attr("CTA_TUPLE_REPLY")
    src, dst = _ip(orig)
    reply_src, _ = _ip(reply) if reply else ("", "")
    proto = orig.get_attr("CTA_TUPLE_PROTO")
    flow = Flow(id=message.get_attr("CTA_ID") or 0, src=src, dst=dst,
                proto=proto.get_attr("CTA_PROTO_NUM"), sport=proto.get_attr("CTA_PROTO_SRC_PORT"),
                dport=proto.get_attr("CTA_PROTO_DST_PORT"), redirected=bool(reply_src and reply_src != dst))
    for direction, attr in (("out", "CTA_COUNTERS_ORIG"), ("in", "CTA_COUNTERS_REPLY")):
        counters = message.get_attr(attr)
        if counters is not None:
            setattr(flow, f"bytes_{direction}", counters.get_attr("CTA_COUNTERS_BYTES") or 0)
            setattr(flow, f"packets_{direction}", counters.get_attr("CTA_COUNTERS_PACKETS") or 0)
    protoinfo = message.get_attr("CTA_PROTOINFO")
    tcp = protoinfo.get_attr("CTA_PROTOINFO_TCP") if protoinfo else None
    if tcp:
        flow.tcp_state = tcp.get_attr("CTA_PROTOINFO_TCP_STATE")
    stamp = message.get_attr("CTA_TIMESTAMP")
    if stamp is not None:
        flow.start_ns = stamp.get_attr("CTA_TIMESTAMP_START") or 0
        flow.stop_ns = stamp.get_attr("CTA_TIMESTAMP_STOP") or 0
    return kind, flow


class FlowReader:
    """Reads conntrack NEW/DESTROY; hands LAN egress flows to `handle(state, flow)`."""

    def __init__(self, is_lan_egress: Callable[[Flow], bool], handle: Callable[[str, Flow], None],
                 progress_every: float = 60.0, rcvbuf: int = 4 << 20) -> None:
        self.is_lan_egress, self.handle, self.progress_every = is_lan_egress, handle, progress_every
        self.rcvbuf = rcvbuf
        self.overruns = self.resyncs = self.events = 0
        self.open: dict[int, tuple[Flow, float]] = {}            # id -> (flow, last progress)

    async def run(self) -> None:
        from pyroute2.netlink.nfnetlink import NFNLGRP_CONNTRACK_DESTROY, NFNLGRP_CONNTRACK_NEW
        from pyroute2.netlink.nfnetlink.nfctsocket import AsyncNFCTSocket
        ct = AsyncNFCTSocket(rcvbuf=self.rcvbuf)
        await ct.bind(groups=(1 << (NFNLGRP_CONNTRACK_NEW - 1)) | (1 << (NFNLGRP_CONNTRACK_DESTROY - 1)))
        progress = asyncio.create_task(self._progress())
        try:
            while True:
                try:
                    async for message in ct.get():
                        self._event(*parse(message))
                except OSError as e:
                    if e.errno != errno.ENOBUFS:
                        raise
                    self.overruns += 1
                    await self.resync()
        finally:
            progress.cancel()
            ct.close()

    def _event(self, kind: int, flow: Flow) -> None:
        self.events += 1
        if not self.is_lan_egress(flow):
            return
        if kind == NEW:
            self.open[flow.id] = (flow, time.monotonic())
            self.handle("new", flow)
        elif kind == DESTROY:
            self.open.pop(flow.id, None)
            self.handle("end", flow)

    async def dump(self) -> list[Flow]:
        from pyroute2.netlink.nfnetlink.nfctsocket import AsyncNFCTSocket
        ct = AsyncNFCTSocket(socket.AF_UNSPEC)          # every family: AF_INET would be IPv4 only
        try:
            return [parse(m)[1] async for m in await ct.dump()]
        finally:
            ct.close()

    async def resync(self) -> None:
        """Read the table again: flows we never saw start are recorded as such."""
        self.resyncs += 1
        flows = [f for f in await self.dump() if self.is_lan_egress(f)]
        missed = [f for f in flows if f.id not in self.open]
        for flow in missed:
            self.open[flow.id] = (flow, time.monotonic())
            self.handle("resync", flow)
        current = {f.id for f in flows}
        for gone in [i for i in self.open if i not in current]:
            flow, _ = self.open.pop(gone)
            self.handle("lost", flow)             # ended while we were blind: no final counters

    async def _progress(self) -> None:
        """Progress records for the flows due one, each read by its tuple; then an empty dump
        (a filter no entry matches), which makes the kernel reap expired entries, so flows end
        (DESTROY) on time rather than at its next garbage collection, without our decoding a
        table that TIME_WAIT fills with thousands of finished flows."""
        from pyroute2.netlink.nfnetlink.nfctsocket import AsyncNFCTSocket
        while True:
            await asyncio.sleep(self.progress_every)
            now = time.monotonic()
            sockets = {family: AsyncNFCTSocket(family)
                       for family in (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6)}
            try:
                for before in [f for f, last in self.open.values() if now - last >= self.progress_every]:
                    flow = await _lookup(sockets, before)
                    if before.id not in self.open:                  # ended meanwhile
                        continue
                    if flow is None or flow.closing:  # closing, or gone: only its DESTROY is left
                        self.open[before.id] = (flow or before, math.inf)
                        continue
                    self.open[flow.id] = (flow, now)
                    if (flow.bytes_out, flow.bytes_in) != (before.bytes_out, before.bytes_in):
                        self.handle("progress", flow)
                async for _ in await sockets[socket.AF_UNSPEC].dump(mark=1, mark_mask=0):
                    pass                                            # (mark & 0) == 1: none
            finally:
                for ct in sockets.values():
                    ct.close()


async def _lookup(sockets: dict, flow: Flow) -> Flow | None:
    """The flow's entry now, by its original tuple; None if gone (or if it has no ports to ask
    by: ICMP gets no progress records)."""
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple
    if flow.sport is None or flow.dport is None:
        return None
    family = socket.AF_INET6 if ":" in flow.src else socket.AF_INET
    try:
        found = await sockets[family].entry("get", tuple_orig=NFCTAttrTuple(
            family=family, saddr=flow.src, daddr=flow.dst, proto=flow.proto, sport=flow.sport,
            dport=flow.dport))
    except NetlinkError:
        return None
    current = [parse(m)[1] for m in found if m.get_attr("CTA_ID") == flow.id]    # not a reuse
    return current[0] if current else None
