"""The bounded fan-out from producers to sinks.

Each sink has its own bounded queue so a slow sink (the log on a slow SD card)
never delays another (metrics) and never blocks a producer: when a queue is
full the event is dropped for that sink and counted. Drops are made visible
twice: in the `gcsguard_events_dropped_total{sink}` counter and in a periodic
`events.dropped` event that summarizes them (itself subject to the same queues,
so the counters stay the source of truth).
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from .clock import Clock
from .event import Event


class EventBus:
    def __init__(self, clock: Clock, registry: CollectorRegistry) -> None:
        self.clock = clock
        self._queues: dict[str, asyncio.Queue[Event]] = {}
        self._seq = 0
        self._dropped: dict[str, int] = {}          # since the last summary
        self._published = Counter("gcsguard_events_published_total",
                                  "Events published on the bus", registry=registry)
        self._drops = Counter("gcsguard_events_dropped_total",
                              "Events dropped because a sink's queue was full", ["sink"],
                              registry=registry)
        self._depth = Gauge("gcsguard_event_queue_depth", "Events waiting in a sink's queue",
                            ["sink"], registry=registry)
        self._capacity = Gauge("gcsguard_event_queue_capacity", "Size of a sink's queue",
                               ["sink"], registry=registry)

    def add_sink(self, name: str, capacity: int) -> "asyncio.Queue[Event]":
        queue: asyncio.Queue[Event] = asyncio.Queue(capacity)
        self._queues[name] = queue
        self._dropped[name] = 0
        self._drops.labels(name)
        self._depth.labels(name).set_function(queue.qsize)
        self._capacity.labels(name).set(capacity)
        return queue

    def emit(self, type: str, **fields: Any) -> Event:
        """Build, stamp and publish an event from this process."""
        self._seq += 1
        return self._fan_out(Event(type=type, stamp=self.clock.stamp(), seq=self._seq, **fields))

    def publish(self, event: Event) -> Event:
        """Publish an event made elsewhere (another process): it gets this bus's seq."""
        self._seq += 1
        return self._fan_out(event.with_seq(self._seq))

    def _fan_out(self, event: Event) -> Event:
        self._published.inc()
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
