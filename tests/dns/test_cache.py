import dnslib

from appliance.dns import wire
from appliance.dns.cache import AnswerCache, entry_from_response


def response(ttls=(300, 60), rcode=0, soa=None):
    q = dnslib.DNSRecord.question("www.example", "A")
    r = q.reply()
    r.header.rcode = rcode
    for i, ttl in enumerate(ttls):
        r.add_answer(dnslib.RR("www.example", rdata=dnslib.A(f"192.0.2.{i + 1}"), ttl=ttl))
    if soa:
        r.add_auth(dnslib.RR("example", dnslib.QTYPE.SOA, ttl=soa[0], rdata=dnslib.SOA(
            "ns.example", "h.example", (1, 2, 3, 4, soa[1]))))
    r.add_ar(dnslib.EDNS0(udp_len=1232))
    return r.pack()


def test_entry_strips_opt_clamps_and_ages_ttls():
    e = entry_from_response(response((300, 60)), now=100.0, min_ttl=10, max_ttl=200, negative_max_ttl=50)
    assert e.ttl == 60 and e.counts == (2, 0, 0)
    body = dnslib.DNSRecord.parse(wire.HEADER.pack(0, e.flags, 1, *e.counts) +
                                  dnslib.DNSRecord.question("www.example").pack()[12:] + e.aged_body(130.0))
    assert [rr.ttl for rr in body.rr] == [170, 30]        # 300 clamped to 200, both aged 30 s
    assert not body.ar                                    # OPT removed: added per client


def test_negative_answers_use_the_soa():
    e = entry_from_response(response((), rcode=3, soa=(900, 120)), 0.0, 0, 86400, 3600)
    assert e.ttl == 120 and e.flags & 0xF == wire.NXDOMAIN
    nosoa = entry_from_response(response((), rcode=3), 0.0, 0, 86400, 3600)
    assert nosoa.ttl == 0                                # not cacheable


def test_cache_expiry_stale_and_capacity():
    cache = AnswerCache(capacity=2, stale_seconds=100)
    e = entry_from_response(response((30,)), 0.0, 0, 86400, 3600)
    cache.put("k", e)
    assert cache.get("k", 29.0) is e and cache.get("k", 31.0) is None
    assert cache.stale("k", 31.0) is e and cache.stale("k", 131.0) is None
    cache.put("a", e)
    cache.put("b", e)
    assert len(cache) == 2 and cache.get("k", 1.0) is None   # least recently used went first
