"""The fast builders and the dnslib builders give the same answers (property test)."""
import dnslib
from hypothesis import given, settings, strategies as st

from appliance.dns import answers, wire
from appliance.dns.cache import entry_from_response

labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
                 min_size=1, max_size=20)
names = st.lists(labels, min_size=1, max_size=5).map(".".join)
qtypes = st.sampled_from(["A", "AAAA", "HTTPS", "SVCB", "TXT", "MX", "ANY", "NS", "SOA", "CAA"])


@st.composite
def queries(draw):
    header = dnslib.DNSHeader(id=draw(st.integers(0, 65535)))   # an id, so dnslib draws no random
    q = dnslib.DNSRecord(header, q=dnslib.DNSQuestion(draw(names), getattr(dnslib.QTYPE, draw(qtypes))))
    q.header.rd = draw(st.booleans())
    q.header.cd = draw(st.booleans())
    q.header.ad = draw(st.booleans())
    if draw(st.booleans()):
        q.add_ar(dnslib.EDNS0(udp_len=draw(st.integers(512, 65535)),
                              flags="do" if draw(st.booleans()) else ""))
    return wire.parse_query(q.pack())


def same(fast: bytes, slow: bytes) -> None:
    """Same header, the same question bytes (0x20 case), the same records."""
    assert fast[:12] == slow[:12]
    a, b = dnslib.DNSRecord.parse(fast), dnslib.DNSRecord.parse(slow)
    assert a.q.qname.label == b.q.qname.label           # byte-exact labels: case preserved
    for x, y in ((a.rr, b.rr), (a.auth, b.auth), (a.ar, b.ar)):
        assert [(rr.rname.label, rr.rtype, rr.rclass, rr.ttl, rr.rdata.toZone() if rr.rtype != 41 else "")
                for rr in x] == [(rr.rname.label, rr.rtype, rr.rclass, rr.ttl,
                                  rr.rdata.toZone() if rr.rtype != 41 else "") for rr in y]


@settings(max_examples=300, deadline=None)
@given(queries(), st.sampled_from(["nxdomain", "nodata", "null"]), st.integers(0, 86400))
def test_sinkhole_paths_agree(q, mode, ttl):
    fast = answers.sinkhole(q, mode, ttl)
    same(fast, answers.sinkhole_dnslib(q, mode, ttl))
    r = dnslib.DNSRecord.parse(fast)
    assert r.header.id == q.id and r.header.rd == bool(q.flags & wire.RD)
    assert r.header.cd == bool(q.flags & wire.CD)
    assert fast[12:12 + len(q.question)] == q.question
    assert any(o.rtype == 41 for o in r.ar) == q.edns
    if q.edns:
        assert bool(next(o for o in r.ar if o.rtype == 41).ttl & 0x8000) == q.do


def upstream_answer(q: wire.Query, ttls: list[int], ad: bool) -> bytes:
    reply = dnslib.DNSRecord.parse(q.raw).reply()
    reply.header.ad = int(ad)
    for i, ttl in enumerate(ttls):
        reply.add_answer(dnslib.RR(reply.q.qname, dnslib.QTYPE.CNAME if i == 0 else dnslib.QTYPE.A,
                                   rdata=dnslib.CNAME("cdn.example") if i == 0 else dnslib.A("192.0.2.9"),
                                   ttl=ttl))
    return reply.pack()


@settings(max_examples=300, deadline=None)
@given(queries(), queries(), st.lists(st.integers(1, 100000), min_size=1, max_size=4),
       st.booleans(), st.integers(0, 200), st.one_of(st.none(), st.just(30)))
def test_cache_hit_paths_agree(first, q, ttls, ad, age, stale):
    """A cache hit for query q from an answer stored for another asker of the same name."""
    stored = dnslib.DNSRecord.parse(first.raw)
    stored.q.qname = dnslib.DNSRecord.parse(q.raw).q.qname.label   # same name, maybe other case
    stored.ar = []
    stored.header.ar = 0
    first = wire.parse_query(stored.pack())
    entry = entry_from_response(upstream_answer(first, ttls, ad), 1000.0, 0, 86400, 3600)
    now = 1000.0 + age
    fast = answers.from_cache(q, entry, now, stale)
    same(fast, answers.from_cache_dnslib(q, entry, now, stale))
    r = dnslib.DNSRecord.parse(fast)
    assert r.header.id == q.id and fast[12:12 + len(q.question)] == q.question
    expected = [stale if stale is not None else max(0, min(t, 86400) - age) for t in ttls]
    assert [rr.ttl for rr in r.rr] == expected
    assert r.header.ad == (ad and (q.do or bool(q.flags & wire.AD)))


@given(queries())
def test_truncated_keeps_the_question(q):
    r = dnslib.DNSRecord.parse(answers.truncated(q))
    assert r.header.tc and r.header.id == q.id and len(r.questions) == 1 and not r.rr


def test_fit_respects_the_client_buffer():
    q = wire.parse_query(dnslib.DNSRecord.question("x.example", "TXT").pack())
    assert answers.fit(q, b"x" * 600, tcp=False) == answers.truncated(q)
    assert answers.fit(q, b"x" * 600, tcp=True) == b"x" * 600
    assert answers.fit(q, b"x" * 500, tcp=False) == b"x" * 500
