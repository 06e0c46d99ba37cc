"""The log's sink under the bus's supervision: its task killed mid-run, the log goes on,
says so in the chain, and verifies."""
import asyncio
import json

from prometheus_client import CollectorRegistry

from appliance.events.bus import EventBus
from appliance.evlog import chain, signing
from appliance.evlog.sink import LogSink
from appliance.evlog.verify import VERIFIED, verify
from appliance.evlog.writer import LogMetrics, LogWriter


def test_a_killed_writer_task_is_restarted_and_recorded(tmp_path, keypair, clock):
    key, pub = keypair
    registry = CollectorRegistry()

    async def scenario():
        bus = EventBus(clock, registry)
        writer = LogWriter(str(tmp_path), key, "test", clock, LogMetrics(registry))
        bus.add_sink("log", LogSink(writer, checkpoint_interval=3600, retention_days=0), 1000)
        bus.start()
        bus.emit("dns.query", action="block", name="before.dji.com")
        await asyncio.sleep(0.2)
        bus.task("log").cancel()                         # the writer's task is killed
        await asyncio.sleep(0)
        bus.emit("dns.query", action="block", name="meanwhile.dji.com")
        await asyncio.sleep(0.5)
        bus.emit("dns.query", action="block", name="after.dji.com")
        await bus.close()

    asyncio.run(scenario())
    records = [json.loads(line) for name in chain.log_files(str(tmp_path))
               for line in (tmp_path / name).read_bytes().splitlines()]
    names = [r.get("name") or r["type"] for r in records]
    assert names == ["before.dji.com", "meanwhile.dji.com", "sink.restarted", "after.dji.com"], names
    assert records[2]["reason"] == "log" and records[2]["details"]["error"] == "cancelled"
    assert registry.get_sample_value("gcsguard_sink_restarts_total", {"sink": "log"}) == 1
    assert verify(str(tmp_path), signing.load_public(pub)).outcome == VERIFIED
