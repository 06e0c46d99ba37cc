"""The log as a bus sink: batches into the writer, checkpoints on schedule.

All writer calls happen here, one at a time, in a worker thread, so a slow
disk or fsync never stalls the event loop that serves DNS. The bus runs it
(events/bus.py): `handle` per batch, `idle` when nothing came for a while,
`close` after the last batch.
"""
from __future__ import annotations

import asyncio
import time

from ..events.event import Event
from .writer import LogWriter


class LogSink:
    gather = 0.05       # seconds a lone event waits for company before it is written

    def __init__(self, writer: LogWriter, *, checkpoint_interval: float, retention_days: int) -> None:
        self.writer = writer
        writer.checkpoint_every = checkpoint_interval
        self.checkpoint_interval, self.retention_days = checkpoint_interval, retention_days
        self.idle_after = min(writer.fsync_interval, checkpoint_interval)
        self._next_checkpoint: float | None = None

    async def _open(self) -> None:
        if self._next_checkpoint is None:
            await asyncio.to_thread(self.writer.open)
            self._next_checkpoint = time.monotonic() + self.checkpoint_interval

    async def handle(self, events: list[Event]) -> None:
        await self._open()
        await asyncio.to_thread(self.writer.commit, self.writer.encode(events))
        await self._maintain_if_due()

    async def idle(self) -> None:
        """Nothing to write: honour fsync_interval, and checkpoint when due."""
        await self._open()
        await asyncio.to_thread(self.writer.flush)
        await self._maintain_if_due()

    async def close(self) -> None:
        await self._open()
        await asyncio.to_thread(self.writer.close)

    async def _maintain_if_due(self) -> None:
        if time.monotonic() >= self._next_checkpoint:
            await asyncio.to_thread(self._maintain)
            self._next_checkpoint = time.monotonic() + self.checkpoint_interval

    def _maintain(self) -> None:
        self.writer.checkpoint("interval")
        if self.retention_days > 0:
            self.writer.prune(self.retention_days, self.writer.clock.stamp().time[:10])
