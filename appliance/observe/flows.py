"""Allowed flows from conntrack: one `egress.flow` event when a flow starts and when it
ends (bytes and packets each way, duration), and a progress record for each interval in
which an open flow moved bytes. A TCP flow that is closing gets none: conntrack keeps it
through TIME_WAIT (two minutes by default), and its end record carries the totals.

After an overrun (ENOBUFS: the kernel dropped events we were too slow for) the table
is read again and the gap is recorded, never hidden.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Callable

from . import ctevents
from .ctevents import Flow, EventSocket

NEW, DESTROY = 0, 2
log = logging.getLogger("gcsguard.flows")


class FlowReader:
    """Reads conntrack NEW/DESTROY; hands LAN egress flows to `handle(state, flow)`."""

    def __init__(self, is_lan_egress: Callable[[Flow], bool], handle: Callable[[str, Flow], None],
                 progress_every: float = 60.0, rcvbuf: int = 16 << 20, max_open: int = 65536) -> None:
        self.is_lan_egress, self.handle, self.progress_every = is_lan_egress, handle, progress_every
        self.rcvbuf, self.max_open = rcvbuf, max_open     # max_open: conntrack's own default size
        self.overruns = self.resyncs = self.events = self.untracked = 0
        self.open: dict[int, tuple[Flow, float]] = {}            # id -> (flow, last progress)

    async def run(self) -> None:
        events = EventSocket(self.rcvbuf)
        loop = asyncio.get_running_loop()
        overrun = asyncio.Event()

        def readable() -> None:
            if not events.drain(self._event):
                self.overruns += 1
                overrun.set()

        loop.add_reader(events.fileno(), readable)
        progress = asyncio.create_task(self._progress())
        try:
            while True:
                await overrun.wait()
                loop.remove_reader(events.fileno())     # the table as one picture: no event
                try:                                     # may end a flow the dump still holds
                    await self.resync()
                finally:
                    overrun.clear()
                    loop.add_reader(events.fileno(), readable)
        finally:
            progress.cancel()
            loop.remove_reader(events.fileno())
            events.close()

    def _event(self, kind: int, flow: Flow) -> None:
        self.events += 1
        if not self.is_lan_egress(flow):
            return
        if kind == NEW:
            self._track(flow)
            self.handle("new", flow)
        elif kind == DESTROY:
            self.open.pop(flow.id, None)
            self.handle("end", flow)

    def _track(self, flow: Flow) -> None:
        if len(self.open) < self.max_open:
            self.open[flow.id] = (flow, time.monotonic())
        else:                          # its start and end are recorded; no progress records
            self.untracked += 1

    async def dump(self, wanted: set[int] | None = None) -> list[Flow]:
        return await asyncio.to_thread(ctevents.dump, wanted)   # a big table must not stall the loop

    async def resync(self) -> None:
        """Read the table again: flows we never saw start are recorded as such."""
        self.resyncs += 1
        try:
            flows = [f for f in await self.dump() if self.is_lan_egress(f)]
        except OSError as e:          # counted as one more overrun: the next one reads again
            log.warning("conntrack dump after an overrun failed: %s", e)
            self.overruns += 1
            return
        missed = [f for f in flows if f.id not in self.open]
        for flow in missed:
            self._track(flow)
            self.handle("resync", flow)
        current = {f.id for f in flows}
        for gone in [i for i in self.open if i not in current]:
            flow, _ = self.open.pop(gone)
            self.handle("lost", flow)             # ended while we were blind: no final counters

    async def _progress(self) -> None:
        """Progress records for the flows due one, from one dump of the table (only their
        entries decoded). The dump also makes the kernel reap expired entries, so flows end
        (DESTROY) on time rather than at its next garbage collection."""
        while True:
            await asyncio.sleep(self.progress_every)
            now = time.monotonic()
            due = [f for f, last in self.open.values() if now - last >= self.progress_every]
            wanted = {f.id for f in due}
            try:
                table = {f.id: f for f in await self.dump(wanted)}
            except OSError as e:      # a dump the kernel cut short (ENOBUFS): the next pass tries again
                log.warning("conntrack dump for progress records failed: %s", e)
                continue
            for before in due:
                if before.id not in self.open:                      # ended meanwhile
                    continue
                flow = table.get(before.id)
                if flow is not None and _key(flow) != _key(before):
                    flow = None                                     # the id reused by another
                if flow is None or flow.closing:      # closing, or gone: only its DESTROY is left
                    self.open[before.id] = (flow or before, math.inf)
                    continue
                self.open[flow.id] = (flow, now)
                if (flow.bytes_out, flow.bytes_in) != (before.bytes_out, before.bytes_in):
                    self.handle("progress", flow)


def _key(flow: Flow) -> tuple:
    return flow.src, flow.dst, flow.proto, flow.sport, flow.dport
