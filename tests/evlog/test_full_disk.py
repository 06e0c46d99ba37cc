"""A full disk must not stop producers; the loss is counted and logged when space returns."""
import asyncio
import json
import os
import subprocess

import pytest
from prometheus_client import CollectorRegistry

from appliance.events.bus import EventBus
from appliance.evlog import chain
from appliance.evlog.sink import LogSink
from appliance.evlog.verify import verify
from appliance.evlog.writer import LogMetrics, LogWriter


@pytest.fixture
def small_disk(tmp_path):
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mountpoint)], check=True)
    yield mountpoint
    subprocess.run(["umount", str(mountpoint)], check=True)


def fill(path, leave: int) -> None:
    """Fill the filesystem at path's directory, leaving about `leave` bytes free."""
    st = os.statvfs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))


def test_full_disk_counts_loss_and_recovers(small_disk, keypair, clock, fake_time):
    key, pub = keypair
    registry = CollectorRegistry()
    value = lambda name: registry.get_sample_value(name) or 0

    async def scenario():
        bus = EventBus(clock, registry)
        writer = LogWriter(str(small_disk / "log"), key, "test", clock, LogMetrics(registry),
                           fsync="always")
        bus.add_sink("log", LogSink(writer, checkpoint_interval=3600, retention_days=0), 100_000)
        bus.start()
        for i in range(20):                              # positive control: writes succeed
            bus.emit("dns.query", action="block", name=f"before{i}.dji.com")
        await asyncio.sleep(0.3)
        assert value("gcsguard_log_records_written_total") == 20
        filler = small_disk / "filler"
        fill(str(filler), leave=4096)
        for i in range(3000):                            # the producer is never blocked
            bus.emit("dns.query", action="block", name=f"during{i}.dji.com")
            if i % 500 == 0:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        lost = value("gcsguard_log_records_lost_total")
        assert lost > 0 and value("gcsguard_log_write_failures_total") > 0
        assert value("gcsguard_events_published_total") == 3020
        filler.unlink()                                  # space returns
        bus.emit("dns.query", action="block", name="after.dji.com")
        await asyncio.sleep(0.3)
        await bus.close()
        return lost, value("gcsguard_log_records_written_total")

    lost, written = asyncio.run(scenario())
    directory = small_disk / "log"
    records = [json.loads(l) for f in chain.log_files(str(directory))
               for l in (directory / f).read_bytes().splitlines()]
    loss = [r for r in records if r["type"] == "log.loss"]
    assert len(loss) == 1 and loss[0]["details"]["records_lost"] == lost
    assert "No space left on device" in loss[0]["details"]["errors"]
    assert records[-1]["name"] == "after.dji.com"
    assert written + lost == 3020 + 1 + 1             # every event is written or counted lost
    from appliance.evlog import signing
    report = verify(str(directory), signing.load_public(pub))
    assert report.ok, report.problems
