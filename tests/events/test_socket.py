import asyncio
import socket

from appliance.events.bus import EventBus
from appliance.events.event import Event
from appliance.events.socket import EventSender, EventSocketServer
from tests.helpers import CollectingSink


def test_events_from_another_process_join_the_bus(tmp_path, clock, registry):
    path = str(tmp_path / "events.sock")

    async def run():
        bus = EventBus(clock, registry)
        q = bus.add_sink("log", CollectingSink(), 100)
        server = EventSocketServer(path, bus, registry)
        await server.start()
        sender = EventSender(path)
        sent = Event(type="tls.blocked", stamp=clock.stamp(), action="block", source="gate",
                     name="mydjiflight.dji.com", vendor="DJI", seq=99)
        assert sender.send(sent)
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        raw.sendto(b"not json", path)
        raw.sendto(b'{"schema_version": 1}', path)
        await asyncio.sleep(0.1)
        server.close()
        return sent, q.get_nowait(), q.qsize()

    sent, got, left = asyncio.run(run())
    assert got.name == sent.name and got.source == "gate" and got.stamp == sent.stamp
    assert got.seq == 1                       # the receiving bus numbers it
    assert left == 0
    assert registry.get_sample_value("gcsguard_socket_events_rejected_total", {"reason": "json"}) == 1
    assert registry.get_sample_value("gcsguard_socket_events_rejected_total", {"reason": "schema"}) == 1


def test_sender_never_waits_when_the_daemon_is_down(tmp_path, clock):
    sender = EventSender(str(tmp_path / "nobody-listens.sock"))
    assert not sender.send(Event(type="tls.blocked", stamp=clock.stamp()))
    assert (sender.sent, sender.unsent) == (0, 1)


def test_sender_never_waits_when_the_daemon_is_busy(tmp_path, clock):
    path = str(tmp_path / "busy.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)                       # bound, but never reads: its queue fills up
    sender = EventSender(path)
    event = Event(type="tls.blocked", stamp=clock.stamp(), details={"pad": "x" * 1000})
    results = [sender.send(event) for _ in range(5000)]
    assert results[0] and not results[-1]
    assert sender.sent + sender.unsent == 5000 and sender.unsent > 0
    receiver.close()
