import asyncio

from appliance.events.bus import EventBus
from tests.helpers import CollectingSink


def test_full_queue_drops_counts_and_never_blocks(clock, registry):
    async def run():
        bus = EventBus(clock, registry)
        slow = bus.add_sink("log", CollectingSink(), 3)
        fast = bus.add_sink("metrics", CollectingSink(), 100)
        for i in range(10):
            bus.emit("dns.query", action="block", name=f"n{i}.example")
        return bus, slow, fast

    bus, slow, fast = asyncio.run(run())
    sample = registry.get_sample_value
    assert sample("gcsguard_events_published_total") == 10
    assert sample("gcsguard_events_dropped_total", {"sink": "log"}) == 7
    assert sample("gcsguard_events_dropped_total", {"sink": "metrics"}) == 0
    assert sample("gcsguard_event_queue_depth", {"sink": "log"}) == 3
    assert [slow.get_nowait().seq for _ in range(3)] == [1, 2, 3]   # later seqs show the gap
    assert fast.qsize() == 10
    summary = bus.drop_summary()
    assert summary.type == "events.dropped" and summary.details["dropped_by_sink"] == {"log": 7}
    assert bus.drop_summary() is None                                # nothing new since


def test_seq_increases_for_every_published_event(clock, registry):
    async def run():
        bus = EventBus(clock, registry)
        q = bus.add_sink("log", CollectingSink(), 10)
        bus.emit("a.b")
        bus.emit("a.c")
        return [q.get_nowait().seq for _ in range(2)]

    assert asyncio.run(run()) == [1, 2]


def test_the_bus_runs_its_sinks_in_batches_and_drains_them_at_close(clock, registry):
    async def run():
        bus = EventBus(clock, registry)
        sink = CollectingSink()
        bus.add_sink("log", sink, 100)
        bus.start()
        bus.emit("a.b")
        await asyncio.sleep(0.05)
        handled_while_running = len(sink.events)
        for _ in range(5):
            bus.emit("a.c")
        await bus.close()                        # the 5 still queued reach the sink
        return handled_while_running, [e.seq for e in sink.events], sink.closed

    assert asyncio.run(run()) == (1, [1, 2, 3, 4, 5, 6], True)


def test_a_failing_sink_is_counted_recorded_and_goes_on(clock, registry):
    class Flaky(CollectingSink):
        async def handle(self, events):
            if any(e.type == "poison" for e in events):
                raise ValueError("cannot handle this")
            await super().handle(events)

    async def run():
        bus = EventBus(clock, registry)
        flaky, other = Flaky(), CollectingSink()
        bus.add_sink("log", flaky, 100)
        bus.add_sink("metrics", other, 100)
        bus.start()
        bus.emit("poison")
        await asyncio.sleep(0.05)
        bus.emit("after")                      # the sink still runs
        await bus.close()
        return [e.type for e in flaky.events], [e.type for e in other.events]

    flaky, other = asyncio.run(run())
    assert flaky == ["sink.failed", "after"] and other == ["poison", "sink.failed", "after"]
    assert registry.get_sample_value("gcsguard_sink_failures_total", {"sink": "log"}) == 1
    assert registry.get_sample_value("gcsguard_events_dropped_total", {"sink": "log"}) == 1


def test_a_sink_failing_on_every_batch_does_not_feed_itself(clock, registry):
    class Broken(CollectingSink):
        async def handle(self, events):
            raise OSError("gone")

    async def run():
        bus = EventBus(clock, registry)
        bus.add_sink("log", Broken(), 1000)
        bus.start()
        for _ in range(5):
            bus.emit("a.b")
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        published = registry.get_sample_value("gcsguard_events_published_total")
        await bus.close()
        return published

    assert asyncio.run(run()) == 6                   # 5 events and one sink.failed, no storm
    assert registry.get_sample_value("gcsguard_sink_failures_total", {"sink": "log"}) >= 5


def test_a_dead_sink_task_is_restarted_counted_and_recorded(clock, registry):
    """Killed from outside, then dying in its idle pass: each time the sink runs again, its
    queue kept what came meanwhile, and the other sinks (and it) get a sink.restarted."""
    class DiesWhenIdle(CollectingSink):
        idle_after, deaths = 0.02, 0

        async def idle(self):
            if self.deaths == 0:
                self.deaths += 1
                raise OSError("fsync: input/output error")

    async def run():
        bus = EventBus(clock, registry)
        log, other = CollectingSink(), DiesWhenIdle()
        bus.add_sink("log", log, 100)
        bus.add_sink("alerts", other, 100)
        bus.start()
        bus.emit("before")
        await asyncio.sleep(0.05)
        killed = bus.task("log")
        killed.cancel()                                  # a killed writer task
        await asyncio.sleep(0)
        bus.emit("meanwhile")
        await asyncio.sleep(0.4)                         # backoffs: 0.1 s each
        running = registry.get_sample_value("gcsguard_sink_running", {"sink": "log"})
        assert bus.task("log") is not killed and not bus.task("log").done()
        bus.emit("after")
        await bus.close()
        return [e.type for e in log.events], [e for e in other.events], running, log.closed

    log, other, running, closed = asyncio.run(run())
    assert log[0] == "before" and log[-1] == "after" and "meanwhile" in log and closed
    restarts = [e for e in other if e.type == "sink.restarted"]
    assert sorted(e.reason for e in restarts) == ["alerts", "log"], restarts
    assert {e.details["error"] for e in restarts} == {"cancelled", "OSError('fsync: input/output error')"}
    assert running == 1
    for sink in ("log", "alerts"):
        assert registry.get_sample_value("gcsguard_sink_restarts_total", {"sink": sink}) == 1
    assert registry.get_sample_value("gcsguard_sink_running", {"sink": "log"}) == 0   # closed
