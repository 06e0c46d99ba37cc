import asyncio
import os
import socket

from appliance.events.bus import EventBus
from appliance.events.event import Event
from appliance.events.senders import COMMANDS, GATE, Vocabulary
from appliance.events.socket import EventSender, EventSocketServer
from tests.helpers import CollectingSink


def gate_event(clock, **fields):
    return Event(type="tls.decision", stamp=clock.stamp(), action="block", source="gate",
                 reason="sni-list", name="mydjiflight.dji.com", vendor="DJI", seq=99, **fields)


def serve(tmp_path, clock, registry, senders, datagrams, vocabulary=None):
    """Start a server with `senders`, send the datagrams (bytes or Events) from this
    process, and return what reached the bus and the server's summary."""
    path = str(tmp_path / "events.sock")

    async def run():
        bus = EventBus(clock, registry)
        queue = bus.add_sink("log", CollectingSink(), 10_000)
        server = EventSocketServer(path, bus, registry, lambda ip: ("mac:aa", "ctl-03"), senders,
                                   vocabulary or Vocabulary(lambda: {"DJI"}, lambda: {"vendor"}))
        await server.start()
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        raw.setblocking(False)
        for d in datagrams:
            while True:                                 # the daemon drains on this same loop
                try:
                    raw.sendto(d.to_json().encode() if isinstance(d, Event) else d, path)
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        summary = server.summary()
        server.close()
        return [queue.get_nowait() for _ in range(queue.qsize())], summary
    return asyncio.run(run())


def test_a_known_sender_s_event_joins_the_bus_stamped_by_the_daemon(tmp_path, clock, registry, fake_time):
    sent = gate_event(clock, device_name="forged", device_id="mac:ff")
    fake_time.advance(3600)                                  # the daemon's clock, not the sender's
    got, summary = serve(tmp_path, clock, registry, {os.getuid(): GATE}, [sent])
    event, = got
    assert (event.type, event.source, event.name, event.vendor) == ("tls.decision", "gate",
                                                                    "mydjiflight.dji.com", "DJI")
    assert event.seq == 1 and event.stamp.time != sent.stamp.time      # the daemon stamps
    assert (event.device_id, event.device_name) == ("", "")            # no claim of the sender's
    assert event.details["sender_uid"] == os.getuid() and summary is None
    assert registry.get_sample_value("gcsguard_socket_events_received_total") == 1


def test_forged_and_poison_datagrams_are_refused_counted_and_summarized(tmp_path, clock, registry):
    deep = b'{"type":"verify.run","action":"info","details":' + b'{"a":' * 300 + b'1' + b'}' * 301
    surrogate = b'{"type":"verify.run","action":"info","name":"\\ud800x"}'
    datagrams = [gate_event(clock),                                    # the gate's type from a command
                 Event(type="verify.run", stamp=clock.stamp(), action="info", source="gate",
                       reason="pass"),                                 # positive control: lands
                 b"[1, 2]", b"not json", deep, surrogate,
                 b'{"type":"verify.run","action":"open"}',
                 *[Event(type=f"forged.t{i}", stamp=clock.stamp()) for i in range(50)]]
    got, summary = serve(tmp_path, clock, registry, {os.getuid(): COMMANDS}, datagrams)
    assert [(e.type, e.source) for e in got] == [("verify.run", "verify"), ("socket.rejected", "appliance")]
    assert summary.details["by_reason"] == {"type": 51, "schema": 2, "json": 1, "depth": 1, "text": 1}
    assert len(summary.details["examples"]) == 8
    assert all(len(x["sha256"]) == 64 for x in summary.details["examples"])
    assert registry.get_sample_value("gcsguard_socket_events_rejected_total", {"reason": "type"}) == 51


def test_an_unknown_sender_is_refused(tmp_path, clock, registry):
    got, summary = serve(tmp_path, clock, registry, {os.getuid() + 1: GATE}, [gate_event(clock)])
    assert [e.type for e in got] == ["socket.rejected"] and summary.details["by_reason"] == {"sender": 1}


def test_an_unknown_vendor_never_becomes_a_label(tmp_path, clock, registry):
    got, _ = serve(tmp_path, clock, registry, {os.getuid(): GATE}, [gate_event(clock)],
                   Vocabulary(lambda: {"Autel"}, lambda: {"vendor"}))
    event, = got
    assert event.vendor == "" and event.details["claimed_vendor"] == "DJI"


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
