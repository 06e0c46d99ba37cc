"""NFLOG: message parsing and loss counting (pure), then a real round trip in our own netns."""
import json
import socket
import struct
import sys
import textwrap

from appliance.observe.nflog import LoggedPacket, NflogReader, _nla, parse
from tests.conftest import in_netns


def message(prefix: str, payload: bytes, seq: int, indev: int = 2, mac: bytes = b"") -> bytes:
    attrs = (_nla(1, struct.pack("!HBx", 0x0800, 2)) + _nla(4, struct.pack("!I", indev))
             + _nla(10, prefix.encode() + b"\0") + _nla(9, payload) + _nla(12, struct.pack("!I", seq)))
    if mac:
        attrs += _nla(8, struct.pack("!HH", len(mac), 0) + mac + b"\0" * (8 - len(mac)))
    body = struct.pack("=BBH", socket.AF_INET, 0, socket.htons(1)) + attrs
    return struct.pack("=IHHII", 16 + len(body), 4 << 8, 0, 0, 0) + body


def test_parse_reads_every_message_of_a_datagram():
    data = message("gcsguard dot ", b"\x45" + bytes(19), 7, mac=bytes.fromhex("020000000023")) + \
        message("gcsguard quic ", b"\x45" + bytes(27), 8)
    first, second = parse(data)
    assert first == LoggedPacket("gcsguard dot ", 2, 2, 0, "02:00:00:00:00:23", b"\x45" + bytes(19), 7, None)
    assert second.prefix == "gcsguard quic " and second.seq == 8 and second.hwaddr == ""


def test_sequence_gaps_are_counted():
    reader = NflogReader.__new__(NflogReader)          # the counting only: no socket
    reader.received = reader.gaps = 0
    reader._next_seq = None
    for seq in (1, 2, 5, 6, 10):
        reader._count(LoggedPacket("", 2, 0, 0, "", b"", seq, None))
    assert reader.received == 5 and reader.gaps == 5     # 3, 4, 7, 8, 9 never arrived


def test_a_logged_packet_arrives_with_prefix_and_payload(scratch_netns):
    in_netns(scratch_netns, "ip", "link", "set", "lo", "up")
    in_netns(scratch_netns, "nft", "add table inet t; add chain inet t out { type filter hook output "
             "priority 0; }; add rule inet t out udp dport 9 log prefix \"gcsguard test \" group 9")
    code = textwrap.dedent("""
        import asyncio, json, socket
        from appliance.observe.nflog import NflogReader
        async def main():
            reader, got = NflogReader(9), []
            task = asyncio.create_task(reader.run(got.append))
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for i in range(3):
                s.sendto(b"probe%d" % i, ("127.0.0.1", 9))
            for _ in range(100):
                await asyncio.sleep(0.02)
                if len(got) == 3:
                    break
            task.cancel()
            print(json.dumps([[p.prefix, p.payload[-6:].decode(), p.seq] for p in got]
                             + [reader.gaps, reader.overruns]))
        asyncio.run(main())
    """)
    *packets, gaps, overruns = json.loads(in_netns(scratch_netns, sys.executable, "-c", code).stdout)
    assert [p[:2] for p in packets] == [["gcsguard test ", f"probe{i}"] for i in range(3)]
    assert [p[2] for p in packets] == [packets[0][2] + i for i in range(3)] and gaps == overruns == 0
