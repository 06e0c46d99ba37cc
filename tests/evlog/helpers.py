"""Building real logs to test against."""
from __future__ import annotations

from prometheus_client import CollectorRegistry

from appliance.events.event import Event
from appliance.evlog.writer import LogMetrics, LogWriter


def make_writer(directory, key, clock, **kwargs) -> LogWriter:
    writer = LogWriter(str(directory), key, "test-station", clock, LogMetrics(CollectorRegistry()),
                       **kwargs)
    writer.open()
    return writer


def event(clock, i: int, **fields) -> Event:
    return Event(type="dns.query", stamp=clock.stamp(), action="block", name=f"n{i}.dji.com",
                 vendor="DJI", device_id="mac:aa:bb:cc:dd:ee:01", seq=i, **fields)


def write_events(writer: LogWriter, clock, fake_time, count: int, per_batch: int = 5) -> None:
    for start in range(0, count, per_batch):
        batch = [event(clock, i) for i in range(start, min(count, start + per_batch))]
        assert writer.write(batch)
        fake_time.advance(1)
