"""The raw conntrack reader: real ctnetlink events captured in our own netns, read by it
and by pyroute2's full decoder, must give the same flows (v4, v6, UDP, TCP, ICMP, NEW and
DESTROY with counters and timestamps); its dump holds the same flows."""
import json
import sys
import textwrap

from pyroute2.netlink.nfnetlink.nfctsocket import nfct_msg

from appliance.observe import ctevents
from appliance.observe.ctevents import Flow
from tests.conftest import in_netns


def _ip(tuple_attr) -> tuple[str, str]:
    ip = tuple_attr.get_attr("CTA_TUPLE_IP")
    for version in ("V4", "V6"):
        src = ip.get_attr(f"CTA_IP_{version}_SRC")
        if src:
            return src, ip.get_attr(f"CTA_IP_{version}_DST")
    return "", ""


def reference(message) -> tuple[int, Flow]:
    """The flow as pyroute2's full decoder reads it (the reader's former parser)."""
    kind = message["header"]["type"] & 0xFF
    orig, reply = message.get_attr("CTA_TUPLE_ORIG"), message.get_attr("CTA_TUPLE_REPLY")
    src, dst = _ip(orig)
    reply_src, _ = _ip(reply) if reply else ("", "")
    proto = orig.get_attr("CTA_TUPLE_PROTO")
    flow = Flow(id=message.get_attr("CTA_ID") or 0, src=src, dst=dst,
                proto=proto.get_attr("CTA_PROTO_NUM"), sport=proto.get_attr("CTA_PROTO_SRC_PORT"),
                dport=proto.get_attr("CTA_PROTO_DST_PORT"), redirected=bool(reply_src and reply_src != dst))
    for direction, attr in (("out", "CTA_COUNTERS_ORIG"), ("in", "CTA_COUNTERS_REPLY")):
        counters = message.get_attr(attr)
        if counters is not None:
            setattr(flow, f"bytes_{direction}", counters.get_attr("CTA_COUNTERS_BYTES") or 0)
            setattr(flow, f"packets_{direction}", counters.get_attr("CTA_COUNTERS_PACKETS") or 0)
    protoinfo = message.get_attr("CTA_PROTOINFO")
    tcp = protoinfo.get_attr("CTA_PROTOINFO_TCP") if protoinfo else None
    if tcp:
        flow.tcp_state = tcp.get_attr("CTA_PROTOINFO_TCP_STATE")
    stamp = message.get_attr("CTA_TIMESTAMP")
    if stamp is not None:
        flow.start_ns = stamp.get_attr("CTA_TIMESTAMP_START") or 0
        flow.stop_ns = stamp.get_attr("CTA_TIMESTAMP_STOP") or 0
    return kind, flow

CAPTURE = textwrap.dedent("""
    import json, socket, time
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTSocket
    from appliance.observe.ctevents import EventSocket, dump
    events = EventSocket(1 << 20)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 7001)); server.listen()
    client = socket.create_connection(("127.0.0.1", 7001)); client.sendall(b"x" * 100)
    server.accept()[0].recv(100)
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.sendto(b"y" * 40, (host, 7002))
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as icmp:
        icmp.sendto(bytes.fromhex("0800f7fe00010000"), ("127.0.0.1", 0))     # echo request
    time.sleep(0.2)
    table = [[f.src, f.dst, f.proto, f.sport, f.dport] for f in dump()]
    some = dump({dump()[0].id})
    none = dump(set())                      # the filter no entry passes: a walk, nothing sent
    NFCTSocket().flush()                      # every entry ends: DESTROY events with counters
    time.sleep(0.2)
    events.sock.setblocking(False)
    datagrams = []
    while True:
        try:
            datagrams.append(events.sock.recv(1 << 16).hex())
        except BlockingIOError:
            break
    print(json.dumps({"datagrams": datagrams, "table": table, "some": len(some), "none": len(none)}))
""")


def test_raw_reader_reads_what_pyroute2_decodes(scratch_netns):
    in_netns(scratch_netns, "ip", "link", "set", "lo", "up")
    in_netns(scratch_netns, "sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1",
             "net.netfilter.nf_conntrack_timestamp=1")
    in_netns(scratch_netns, "nft", "add table inet t; add chain inet t out { type filter hook output "
             "priority 0; }; add rule inet t out ct state new counter")
    captured = json.loads(in_netns(scratch_netns, sys.executable, "-c", CAPTURE).stdout)
    datagrams = [bytes.fromhex(d) for d in captured["datagrams"]]
    raw = [parsed for data in datagrams for parsed in ctevents.parse(data)]
    decoded = []
    for data in datagrams:
        message = nfct_msg(data)
        message.decode()
        decoded.append(reference(message))
    assert raw == decoded
    kinds = {(kind, f.proto, ":" in f.src) for kind, f in raw}
    assert {(0, 6, False), (0, 17, False), (0, 17, True), (0, 1, False), (2, 6, False),
            (2, 17, True)} <= kinds, kinds
    tcp_end = next(f for kind, f in raw if kind == 2 and f.proto == 6)
    assert tcp_end.bytes_out > 100 and tcp_end.packets_in > 0 and tcp_end.stop_ns > tcp_end.start_ns > 0
    assert next(f for _, f in raw if f.proto == 1).sport is None     # ICMP: no ports
    # the dump before the flush held every flow the events started, both families
    started = sorted([f.src, f.dst, f.proto, f.sport, f.dport] for kind, f in raw if kind == 0)
    assert sorted(captured["table"]) == started
    assert (captured["some"], captured["none"]) == (1, 0)


def test_a_datagram_cut_short_is_not_read_past_its_end():
    assert ctevents.parse(b"\x40\x00\x00\x00\x00\x01" + bytes(10)) == []
