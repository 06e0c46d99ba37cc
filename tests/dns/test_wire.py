import dnslib
import pytest

from appliance.dns import wire


def query(name="Ab.Example.com", qtype="A", edns=None, do=False, rd=True):
    q = dnslib.DNSRecord.question(name, qtype)
    q.header.rd = int(rd)
    if edns:
        q.add_ar(dnslib.EDNS0(udp_len=edns, flags="do" if do else ""))
    return q.pack()


def test_parse_query_keeps_what_a_resolver_must():
    raw = query(edns=4096, do=True)
    q = wire.parse_query(raw)
    assert (q.name, q.qtype, q.qclass) == ("ab.example.com", 1, 1)
    assert q.question == raw[12:12 + len(q.question)] and b"Ab" in q.question   # case kept
    assert q.edns and q.do and q.udp_size == 4096 and q.flags & wire.RD
    plain = wire.parse_query(query(edns=None))
    assert not plain.edns and plain.udp_size == 512


@pytest.mark.parametrize("raw, why", [
    (b"\x00" * 11, "shorter"),
    (query()[:14], "past the message"),
    (bytes.fromhex("1234810000010000000000000161000001000100"), "not a plain"),   # QR set
    (query() + b"junk", "trailing"),
    (bytes.fromhex("12340100000100000000000003616263c00c00010001"), "compressed"),
])
def test_refuses_what_the_fast_path_must_not_handle(raw, why):
    with pytest.raises(wire.WireError, match=why):
        wire.parse_query(raw)


def test_read_name_detects_loops():
    msg = bytes.fromhex("123481800001000100000000") + b"\xc0\x0c"
    with pytest.raises(wire.WireError, match="loop"):
        wire.read_name(msg + b"\xc0\x0c", 12)


def test_records_walks_every_section_with_ttl_offsets():
    reply = dnslib.DNSRecord.parse(query()).reply()
    reply.add_answer(dnslib.RR("ab.example.com", dnslib.QTYPE.CNAME, rdata=dnslib.CNAME("x.example"), ttl=7))
    reply.add_answer(dnslib.RR("x.example", rdata=dnslib.A("192.0.2.1"), ttl=9))
    reply.add_ar(dnslib.EDNS0(udp_len=1232))
    msg = reply.pack()
    flags, question_end, rrs = wire.records(msg)
    assert flags & wire.QR and [r.rtype for r in rrs] == [wire.CNAME, wire.A, wire.OPT]
    assert [int.from_bytes(msg[r.ttl_offset:r.ttl_offset + 4], "big") for r in rrs[:2]] == [7, 9]
    assert wire.read_name(msg, rrs[0].rdata_offset)[0] == "x.example"
