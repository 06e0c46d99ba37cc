import dnslib

from appliance.lab.zone import Zone, ZoneServer


def ask(server, name, qtype="A", tcp=False, edns=False):
    q = dnslib.DNSRecord.question(name, qtype)
    if edns:
        q.add_ar(dnslib.EDNS0(udp_len=1232))
    data = server.respond(q.pack(), tcp)
    return dnslib.DNSRecord.parse(data) if data else None


def test_answers_follow_cnames_wildcards_and_nxdomain():
    server = ZoneServer("127.0.0.1", 0, Zone())
    r = ask(server, "telemetry.allowed.example")
    assert [str(rr.rdata) for rr in r.rr] == ["edge.allowed.example.", "api.dji.com.", "203.0.113.12"]
    assert str(ask(server, "x9.bench.example").rr[0].rdata) == "192.0.2.1"
    missing = ask(server, "nope.allowed.example")
    assert missing.header.rcode == 3 and missing.auth[0].rtype == dnslib.QTYPE.SOA
    nodata = ask(server, "www.allowed.example", "TXT")
    assert nodata.header.rcode == 0 and not nodata.rr and nodata.auth
    assert server.queries["telemetry.allowed.example"] == 1


def test_truncation_and_failure_modes():
    server = ZoneServer("127.0.0.1", 0, Zone())
    assert ask(server, "big.allowed.example", "TXT", edns=True).header.tc
    assert len(ask(server, "big.allowed.example", "TXT", tcp=True).rr) == 15
    server.mode = "servfail"
    assert ask(server, "www.allowed.example").header.rcode == 2
    server.mode = "silent"
    assert ask(server, "www.allowed.example") is None
