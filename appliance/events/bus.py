"""The bounded fan-out from producers to sinks.

Each sink has its own bounded queue so a slow sink (the log on a slow SD card)
never delays another (metrics) and never blocks a producer: when a queue is
full the event is dropped for that sink and counted. Drops are made visible
twice: in the `gcsguard_events_dropped_total{sink}` counter and in a periodic
`events.dropped` event that summarizes them (itself subject to the same queues,
so the counters stay the source of truth).

Sinks have one shape (`Sink`): the bus runs each in its own task (`start`), handing it
batches of events in order, and at `close` lets it drain its queue and close. Each task
is supervised: a sink that fails on a batch goes on with the next; a task that dies
(an exception outside a batch, or cancelled from outside) is restarted after a short
backoff, counted and recorded, and its queue waits for it meanwhile.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily

from .clock import Clock
from .event import Event


BATCH = 512
FAILED_EVERY = 10.0       # seconds between sink.failed records of one sink
RESTART_BACKOFF = (0.1, 5.0)   # seconds before a dead sink task runs again: first, at most
log = logging.getLogger("gcsguard.bus")


class Sink(Protocol):
    """A consumer of events: the log, metrics, alerts, device identity.

    `handle` gets every event that reached the sink's queue, in order, in batches; `close`
    is called once, after the last batch. A sink may also have `idle_after` (seconds) and
    `idle()`, called when no event came for that long (the log's fsync and checkpoints),
    and `gather` (seconds a lone event waits for company: one write per burst)."""

    async def handle(self, events: list[Event]) -> None: ...
    async def close(self) -> None: ...


class EventBus:
    def __init__(self, clock: Clock, registry: CollectorRegistry) -> None:
        self.clock = clock
        self._queues: dict[str, asyncio.Queue[Event]] = {}
        self._sinks: dict[str, Sink] = {}
        self._closing: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []
        self._current: dict[str, asyncio.Task] = {}   # sink -> the task its supervisor runs
        self._held: dict[str, list[Event]] = {}       # taken from a queue by a task that died
        self._failed: dict[str, tuple[float, int]] = {}  # sink -> (last record, failures since)
        self._seq = 0
        self._dropped: dict[str, int] = {}          # since the last summary
        registry.register(_Published(self))
        self._drops = Counter("gcsguard_events_dropped_total",
                              "Events dropped because a sink's queue was full", ["sink"],
                              registry=registry)
        self._depth = Gauge("gcsguard_event_queue_depth", "Events waiting in a sink's queue",
                            ["sink"], registry=registry)
        self._capacity = Gauge("gcsguard_event_queue_capacity", "Size of a sink's queue",
                               ["sink"], registry=registry)
        self._failures = Counter("gcsguard_sink_failures_total",
                                 "Batches a sink failed to handle (its events are counted dropped; "
                                 "the sink goes on)", ["sink"], registry=registry)
        self._restarts = Counter("gcsguard_sink_restarts_total",
                                 "Times a sink's task died and was started again", ["sink"],
                                 registry=registry)
        self._running = Gauge("gcsguard_sink_running", "1 while a sink's task runs, 0 while it is "
                              "dead (before its restart) or closed", ["sink"], registry=registry)
        self._progress = Gauge("gcsguard_sink_last_progress_timestamp_seconds",
                               "Unix time a sink last handled a batch or an idle pass: stale while "
                               "it hangs (a dead disk)", ["sink"], registry=registry)

    def add_sink(self, name: str, sink: Sink, capacity: int) -> "asyncio.Queue[Event]":
        """Register `sink` behind a queue of `capacity` (returned, for inspection)."""
        queue: asyncio.Queue[Event] = asyncio.Queue(capacity)
        self._queues[name], self._sinks[name] = queue, sink
        self._dropped[name] = 0
        self._drops.labels(name)
        self._failures.labels(name)
        self._restarts.labels(name)
        self._running.labels(name)
        self._progress.labels(name).set(time.time())
        self._depth.labels(name).set_function(queue.qsize)
        self._capacity.labels(name).set(capacity)
        return queue

    def start(self) -> list[asyncio.Task]:
        """One supervised task per sink, named after it."""
        self._closing = asyncio.Event()
        self._tasks = [asyncio.create_task(self._supervise(name), name=name) for name in self._sinks]
        return list(self._tasks)

    def task(self, name: str) -> asyncio.Task | None:
        """The running task of a sink (what the supervisor restarts)."""
        return self._current.get(name)

    async def _supervise(self, name: str) -> None:
        """Run the sink's task until the bus closes; whatever ends it sooner, run it again.
        `asyncio.wait` (not `await`) tells the task's death from this one's cancellation."""
        backoff = RESTART_BACKOFF[0]
        while True:
            task = self._current[name] = asyncio.create_task(self._run(name), name=f"{name}-run")
            self._running.labels(name).set(1)
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:
                task.cancel()
                raise
            finally:
                self._running.labels(name).set(0)
            if not task.cancelled() and task.exception() is None:
                return                                # closed: drained and closed
            if self._closing.is_set():                # failed while closing: nothing to restart for
                log.error("sink %s failed while closing: %r", name,
                          "cancelled" if task.cancelled() else task.exception())
                return
            why = "cancelled" if task.cancelled() else repr(task.exception())[:500]
            self._restarts.labels(name).inc()
            log.error("sink %s stopped (%s); restarting in %.1f s", name, why, backoff)
            self.emit("sink.restarted", action="error", reason=name, details={
                "error": why, "queued": self._queues[name].qsize(), "backoff_s": backoff})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RESTART_BACKOFF[1])

    async def close(self) -> None:
        """Every sink drains what is queued for it, then closes (at shutdown)."""
        if self._closing is not None:
            self._closing.set()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, name: str) -> None:
        """Closing is a flag, not task cancellation: a sink may be in the middle of a write
        in a thread, and the last events must reach it. Only a task that saw the flag
        drains and closes the sink: one that dies leaves both to its restart."""
        queue, sink = self._queues[name], self._sinks[name]
        idle_after, gather = getattr(sink, "idle_after", None), getattr(sink, "gather", 0.0)
        progress = self._progress.labels(name)
        closing = asyncio.create_task(self._closing.wait())
        get: asyncio.Future | None = None
        try:
            while not closing.done():
                if self._held.get(name):            # taken by a task that died before handling it
                    first = self._held[name].pop(0)
                elif queue.empty():
                    get = asyncio.ensure_future(queue.get())
                    await asyncio.wait({get, closing}, timeout=idle_after,
                                       return_when=asyncio.FIRST_COMPLETED)
                    if not get.done():
                        get.cancel()                # Queue.get gives nothing up when cancelled
                        get = None
                        if not closing.done():
                            await sink.idle()
                            progress.set(time.time())
                        continue
                    first, get = get.result(), None
                else:
                    first = queue.get_nowait()      # busy: no task per event
                if gather and queue.qsize() < BATCH and not closing.done():
                    await asyncio.sleep(gather)
                await self._handle(name, sink, _batch(queue, first))
                progress.set(time.time())
        finally:
            closing.cancel()
            if get is not None:                     # dying while waiting: the wait must not
                if get.done() and not get.cancelled():   # take the next event with it
                    self._held.setdefault(name, []).append(get.result())
                else:
                    get.cancel()
        for event in self._held.pop(name, []):
            await self._handle(name, sink, [event])
        while not queue.empty():
            await self._handle(name, sink, _batch(queue, queue.get_nowait()))
        await sink.close()
        if self._dropped[name]:       # the log cannot say it any more: the journal does
            log.error("sink %s: %d events lost at shutdown", name, self._dropped[name])

    async def _handle(self, name: str, sink: Sink, batch: list[Event]) -> None:
        """A sink that fails on a batch goes on with the next one (supervised, not left
        dead): the failure is counted, the batch counted as dropped, and both recorded."""
        try:
            await sink.handle(batch)
        except asyncio.CancelledError:          # killed mid-batch: whatever it did not finish is lost
            self._dropped[name] += len(batch)
            self._drops.labels(name).inc(len(batch))
            raise
        except Exception as e:
            self._failures.labels(name).inc()
            self._dropped[name] += len(batch)
            self._drops.labels(name).inc(len(batch))
            # One record per sink per FAILED_EVERY: a sink failing on every batch would
            # otherwise feed itself a record per failure.
            now, (last, since) = time.monotonic(), self._failed.get(name, (float("-inf"), 0))
            if now - last < FAILED_EVERY:
                self._failed[name] = (last, since + 1)
                return
            self._failed[name] = (now, 0)
            log.exception("sink %s failed on %d events", name, len(batch))
            self.emit("sink.failed", action="error", reason=name, details={
                "events": len(batch), "error": repr(e)[:500], "failures_since_last": since})

    def emit(self, type: str, **fields: Any) -> Event:
        """Build, stamp and publish an event from this process."""
        self._seq += 1
        return self._fan_out(Event(type=type, stamp=self.clock.stamp(), seq=self._seq, **fields))

    def publish(self, event: Event) -> Event:
        """Publish an event made elsewhere (another process): it gets this bus's seq."""
        self._seq += 1
        return self._fan_out(event.with_seq(self._seq))

    @property
    def published(self) -> int:
        return self._seq                 # every event published got the next seq

    def _fan_out(self, event: Event) -> Event:
        for name, queue in self._queues.items():
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self._dropped[name] += 1
                self._drops.labels(name).inc()
        return event

    def drop_summary(self) -> Event | None:
        """An `events.dropped` event for the drops since the last call, or None."""
        lost = {k: v for k, v in self._dropped.items() if v}
        if not lost:
            return None
        for k in lost:
            self._dropped[k] = 0
        return self.emit("events.dropped", action="error", reason="queue-full",
                         details={"dropped_by_sink": lost, "last_seq": self._seq})

    async def report_drops(self, interval: float, sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        while True:
            await sleep(interval)
            self.drop_summary()


class _Published:
    """gcsguard_events_published_total read from the bus's seq at scrape time: a locked
    counter per event cost more than the rest of publishing it."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    def describe(self):
        return []

    def collect(self):
        yield CounterMetricFamily("gcsguard_events_published", "Events published on the bus",
                                  value=self.bus.published)


def _batch(queue: "asyncio.Queue[Event]", first: Event) -> list[Event]:
    batch = [first]
    while len(batch) < BATCH:
        try:
            batch.append(queue.get_nowait())
        except asyncio.QueueEmpty:
            break
    return batch
