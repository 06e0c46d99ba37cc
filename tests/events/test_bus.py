import asyncio

from appliance.events.bus import EventBus


def test_full_queue_drops_counts_and_never_blocks(clock, registry):
    async def run():
        bus = EventBus(clock, registry)
        slow = bus.add_sink("log", 3)
        fast = bus.add_sink("metrics", 100)
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
        q = bus.add_sink("log", 10)
        bus.emit("a.b")
        bus.emit("a.c")
        return [q.get_nowait().seq for _ in range(2)]

    assert asyncio.run(run()) == [1, 2]
