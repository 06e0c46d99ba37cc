"""The log as a bus sink: drains its queue in batches into the writer.

All writer calls happen here, one at a time, in a worker thread, so a slow
disk or fsync never stalls the event loop that serves DNS.
"""
from __future__ import annotations

import asyncio
import time

from ..events.event import Event
from .writer import LogWriter

BATCH = 512
GATHER = 0.005      # seconds a lone event waits for company before it is written


class LogSink:
    def __init__(self, writer: LogWriter, queue: "asyncio.Queue[Event]", *,
                 checkpoint_interval: float, retention_days: int) -> None:
        self.writer, self.queue = writer, queue
        self.checkpoint_interval, self.retention_days = checkpoint_interval, retention_days
        self._stop = asyncio.Event()

    async def run(self) -> None:
        """Until stop(): write batches, checkpoint on schedule; then drain and close.

        Stopping is a flag, not task cancellation: cancelling a task blocked in
        wait_for(queue.get()) can lose the cancellation (or an event) if both
        happen at once, and the final events must reach the disk.
        """
        await asyncio.to_thread(self.writer.open)
        stop = asyncio.create_task(self._stop.wait())
        next_checkpoint = time.monotonic() + self.checkpoint_interval
        try:
            while not stop.done():
                get = asyncio.create_task(self.queue.get())
                timeout = min(max(0.0, next_checkpoint - time.monotonic()), self.writer.fsync_interval)
                await asyncio.wait({get, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if not get.done():
                    get.cancel()                # Queue.get gives nothing up when cancelled
                    await asyncio.to_thread(self.writer.flush)   # idle: honour fsync_interval
                elif not get.cancelled():
                    first = get.result()
                    if self.queue.qsize() < BATCH and not stop.done():
                        await asyncio.sleep(GATHER)     # let a burst collect: one write, one hop
                    await asyncio.to_thread(self.writer.write, self._batch(first))
                if time.monotonic() >= next_checkpoint:
                    await asyncio.to_thread(self._maintain)
                    next_checkpoint = time.monotonic() + self.checkpoint_interval
        finally:
            stop.cancel()
            await self.drain()
            await asyncio.to_thread(self.writer.close)

    def stop(self) -> None:
        self._stop.set()

    def _batch(self, first: Event) -> list[Event]:
        batch = [first]
        while len(batch) < BATCH:
            try:
                batch.append(self.queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return batch

    def _maintain(self) -> None:
        self.writer.checkpoint("interval")
        if self.retention_days > 0:
            self.writer.prune(self.retention_days, self.writer.clock.stamp().time[:10])

    async def drain(self) -> None:
        """Write whatever is queued (at shutdown)."""
        while not self.queue.empty():
            await asyncio.to_thread(self.writer.write, self._batch(self.queue.get_nowait()))
