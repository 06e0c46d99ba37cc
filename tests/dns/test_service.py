"""The resolver end to end: the real `gcsguard dns` process, queried with dig.

Every "blocked" assertion stands beside a positive control in the same test: an
allowed name resolves through the same resolver.
"""
import random
import signal
import socket
import struct
import subprocess
import threading
import time

import dnslib
import pytest

from tests.helpers import metric

ALLOWED = "www.allowed.example"


def test_udp_and_tcp_block_vendor_names_and_resolve_others(resolver, zone):
    for proto in ("+notcp", "+tcp"):
        ok = resolver.dig(ALLOWED, proto)
        assert ok.status == "NOERROR" and "198.51.100.80" in ok.answer[0]
        assert {"qr", "rd", "ra"} <= ok.flags and "aa" not in ok.flags
        blocked = resolver.dig("mydjiflight.dji.com", proto)
        assert blocked.status == "NXDOMAIN" and not blocked.answer
        assert "gcsguard.invalid" in blocked.sections["AUTHORITY"][0]
    assert zone.queries["mydjiflight.dji.com"] == 0            # never left the appliance
    assert zone.queries[ALLOWED] >= 1


@pytest.mark.parametrize("qtype", ["A", "AAAA", "HTTPS", "SVCB", "TXT", "MX", "ANY", "CAA"])
def test_every_query_type_gets_the_same_sinkhole(resolver, qtype):
    assert resolver.dig("api.flysafe-api.dji.com", qtype).status == "NXDOMAIN"
    assert resolver.dig(ALLOWED, qtype).status == "NOERROR"


def test_null_and_nodata_sinkholes(make_resolver):
    null = make_resolver('sinkhole = "null"\n')
    assert "0.0.0.0" in null.dig("mydjiflight.dji.com", "A").answer[0]
    assert null.dig("mydjiflight.dji.com", "AAAA").answer[0].endswith("::")
    txt = null.dig("mydjiflight.dji.com", "TXT")
    assert txt.status == "NOERROR" and not txt.answer
    assert "198.51.100.80" in null.dig(ALLOWED).answer[0]


def test_edns_dnssec_and_0x20_case(resolver):
    plain = resolver.dig(ALLOWED, "+noedns")
    assert plain.edns is None and plain.status == "NOERROR"
    edns = resolver.dig(ALLOWED, "+edns=0", "+bufsize=4096")
    assert edns.edns and edns.edns.group(2) == "1232" and "do" not in edns.edns.group(1)
    do = resolver.dig("WwW.AlLoWeD.eXaMpLe", "+dnssec")
    assert "do" in do.edns.group(1)
    assert do.sections["QUESTION"][0].startswith(";WwW.AlLoWeD.eXaMpLe.")   # as asked
    blocked = resolver.dig("MyDjiFlight.DJI.com", "+dnssec")
    assert blocked.status == "NXDOMAIN" and blocked.sections["QUESTION"][0].startswith(";MyDjiFlight.DJI.com.")
    assert "do" in blocked.edns.group(1)
    assert {"cd"} <= resolver.dig(ALLOWED, "+cdflag").flags


def test_cname_chains_resolve_and_cloaked_vendors_are_blocked(resolver, zone):
    chain = resolver.dig("chain.allowed.example")
    assert chain.status == "NOERROR" and "CNAME" in chain.answer[0] and "198.51.100.80" in chain.answer[1]
    cloaked = resolver.dig("telemetry.allowed.example")      # -> edge.allowed.example -> api.dji.com
    assert cloaked.status == "NXDOMAIN" and not cloaked.answer
    assert resolver.dig("telemetry.allowed.example").status == "NXDOMAIN"   # from the cache too
    record = resolver.daemon.wait_for(lambda r: r["type"] == "dns.query" and
                                      r.get("name") == "telemetry.allowed.example", "cloaked query")[0]
    assert record["reason"] == "cname-list" and record["vendor"] == "DJI"
    assert record["details"]["matched"] == "api.dji.com"


def test_answer_addresses_in_ip_lists_are_blocked(resolver):
    r = resolver.dig("hardcoded.allowed.example")
    assert r.status == "NXDOMAIN"
    record = resolver.daemon.wait_for(lambda r: r.get("name") == "hardcoded.allowed.example",
                                      "address-blocked query")[0]
    assert record["reason"] == "address-list" and record["vendor"] == "TestVendor"
    assert resolver.dig(ALLOWED).status == "NOERROR"


def test_truncation_then_tcp(resolver):
    udp = resolver.dig("big.allowed.example", "TXT", "+ignore")
    assert "tc" in udp.flags and not udp.answer and udp.sections["QUESTION"]
    full = resolver.dig("big.allowed.example", "TXT")            # dig retries over TCP
    assert full.status == "NOERROR" and len(full.answer) == 15 and "tc" not in full.flags
    small = resolver.dig("big.allowed.example", "TXT", "+ignore", "+noedns")
    assert "tc" in small.flags


def test_bypass_canaries(resolver):
    for name in ("use-application-dns.net", "mask.icloud.com", "mask-h2.icloud.com"):
        assert resolver.dig(name).status == "NXDOMAIN", name
    ddr = resolver.dig("_dns.resolver.arpa", "SVCB")
    assert ddr.status == "NOERROR" and not ddr.answer
    assert resolver.dig("dns.google").status == "NXDOMAIN"        # a DoH resolver, by list
    assert resolver.dig(ALLOWED).status == "NOERROR"


def test_ttls_age_in_the_cache(resolver):
    first = int(resolver.dig("short.allowed.example").answer[0].split()[1])
    time.sleep(2.1)
    second = int(resolver.dig("short.allowed.example").answer[0].split()[1])
    assert first <= 30 and first - second >= 2


def test_upstream_failure_stale_then_servfail_then_recovery(make_resolver, zone):
    r = make_resolver("max_ttl = 1\nupstream_timeout = 0.3\n")
    assert "198.51.100.80" in r.dig(ALLOWED).answer[0]
    zone.mode = "silent"
    try:
        time.sleep(1.2)                                   # the cached answer has expired
        stale = r.dig(ALLOWED)
        assert stale.status == "NOERROR" and stale.answer[0].split()[1] == "30"   # RFC 8767 TTL
        started = time.monotonic()
        failed = r.dig("never-seen.allowed.example")
        assert failed.status == "SERVFAIL" and time.monotonic() - started < 2
        assert r.dig("mydjiflight.dji.com").status == "NXDOMAIN"   # blocking needs no upstream
    finally:
        zone.mode = "answer"
    time.sleep(1.1)
    recovered = r.dig(ALLOWED)
    assert recovered.status == "NOERROR" and recovered.answer[0].split()[1] != "30"
    text = r.daemon.scrape()
    assert metric(text, "gcsguard_dns_queries_total", '{vendor="",verdict="stale"}') >= 1
    assert metric(text, "gcsguard_dns_queries_total", '{vendor="",verdict="servfail"}') >= 1


def test_failover_to_the_next_upstream(make_resolver, zone):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dead:
        dead.bind(("127.0.0.1", 0))                      # bound, never answers
        dead_port = dead.getsockname()[1]
        r = make_resolver(f'upstreams = ["127.0.0.1:{dead_port}", "127.0.0.1:{zone.port}"]\n'
                          "upstream_timeout = 0.3\n")
        assert "198.51.100.80" in r.dig(ALLOWED).answer[0]
        text = r.daemon.scrape()
        assert metric(text, "gcsguard_dns_upstream_queries_total",
                      f'{{result="timeout",upstream="127.0.0.1:{dead_port}"}}') >= 1


def test_rate_limit_per_client(make_resolver):
    r = make_resolver("rate_limit = 5.0\nrate_burst = 5.0\n")
    time.sleep(1.1)                                       # refill after the readiness probes
    query = dnslib.DNSRecord.question(ALLOWED).pack()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        for _ in range(40):
            s.sendto(query, ("127.0.0.1", r.port))
        answered = 0
        try:
            while True:
                s.recv(4096)
                answered += 1
        except socket.timeout:
            pass
    assert 1 <= answered <= 8
    other = r.dig(ALLOWED, source="127.0.0.2")            # another device still gets answers
    assert other.status == "NOERROR"
    assert metric(r.daemon.scrape(), "gcsguard_dns_rate_limited_total") >= 30
    summary = r.daemon.wait_for(lambda x: x["type"] == "dns.rate_limited", "rate-limit summary")[0]
    assert summary["details"]["top"]["127.0.0.1"] >= 30


def test_only_configured_clients_get_answers(make_resolver):
    r = make_resolver('clients = ["127.0.0.2/32"]\n')
    assert r.dig(ALLOWED, source="127.0.0.1").status == "REFUSED"
    assert r.dig(ALLOWED, source="127.0.0.2").status == "NOERROR"


def malformed_inputs() -> list[bytes]:
    rng = random.Random(7)
    good = dnslib.DNSRecord.question(ALLOWED).pack()
    out = [b"", b"\x00", good[:5], good[:11], good[:13], good[:-2]]
    out += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(300)]
    out += [bytes(b ^ (1 << rng.randrange(8)) if rng.random() < 0.05 else b for b in good) for _ in range(200)]
    loop = bytearray.fromhex("abcd01000001000000000000") + b"\xc0\x0c\x00\x01\x00\x01"
    out.append(bytes(loop))                                # compression pointer to itself
    response = dnslib.DNSRecord.question(ALLOWED).reply().pack()
    out += [response] * 5                                  # responses sent as queries: never answered
    return out


def test_malformed_input_never_stops_the_server(resolver):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i, data in enumerate(malformed_inputs()):
            s.sendto(data, ("127.0.0.1", resolver.port))
            if i % 100 == 0:
                assert resolver.dig(ALLOWED).status == "NOERROR"
    assert resolver.dig(ALLOWED).status == "NOERROR"
    assert resolver.dig("mydjiflight.dji.com").status == "NXDOMAIN"
    text = resolver.daemon.scrape()
    assert metric(text, "gcsguard_dns_malformed_total", '{kind="response"}') >= 5
    assert metric(text, "gcsguard_dns_malformed_total", '{kind="short"}') >= 4
    assert metric(text, "gcsguard_dns_malformed_total", '{kind="formerr"}') >= 1
    with socket.create_connection(("127.0.0.1", resolver.port)) as tcp:   # junk over TCP too
        tcp.sendall(b"\x00\x05hello\x00\x02")
    assert resolver.dig(ALLOWED, "+tcp").status == "NOERROR"


def test_formerr_for_a_readable_header(resolver):
    bad = bytes.fromhex("beef0100000100000000000003616263")   # question cut short
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(bad, ("127.0.0.1", resolver.port))
        reply = s.recv(512)
    assert reply[:2] == b"\xbe\xef" and reply[3] & 0xF == 1 and reply[2] & 0x80


def test_reload_under_load(make_resolver, tmp_path):
    extra = tmp_path / "late.list"
    extra.write_text("# vendor: Late\n# category: vendor\nsomething-else.example\n")
    r = make_resolver()
    config = r.daemon.config
    text = open(config).read().replace('block = [', f'block = ["{extra}", ')
    open(config, "w").write(text)
    results, stop = [], threading.Event()

    def load():
        deadline = time.monotonic() + 15
        while not stop.is_set() and time.monotonic() < deadline and len(results) < 2000:
            results.append(r.dig(ALLOWED).status)
    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    time.sleep(0.5)
    extra.write_text("# vendor: Late\n# category: vendor\nallowed.example\n")
    r.daemon.proc.send_signal(signal.SIGHUP)
    r.daemon.wait_for(lambda x: x["type"] == "lists.loaded" and
                      any(f["path"] == str(extra) for f in x["details"]["files"]), "reload")
    time.sleep(0.5)
    stop.set()
    for w in workers:
        w.join()
    assert results and all(s in ("NOERROR", "NXDOMAIN") for s in results), set(results)
    assert results[0] == "NOERROR" and results[-1] == "NXDOMAIN"   # the new block took effect
    assert r.dig("mydjiflight.dji.com").status == "NXDOMAIN"


def test_every_query_is_an_event_with_attribution(resolver):
    resolver.dig("MyDjiFlight.dji.com", "AAAA")
    resolver.dig(ALLOWED)
    blocked = resolver.daemon.wait_for(lambda r: r["type"] == "dns.query" and
                                       r.get("name") == "mydjiflight.dji.com" and
                                       r["details"]["qtype"] == "AAAA", "blocked query event")[0]
    assert blocked["action"] == "block" and blocked["vendor"] == "DJI" and blocked["category"] == "vendor"
    assert blocked["details"]["list"].endswith("vendors/dji.list:" + blocked["details"]["list"].split(":")[-1])
    assert blocked["details"]["entry"] == "mydjiflight.dji.com" and blocked["device_ip"] == "127.0.0.1"
    assert blocked["details"]["latency_us"] >= 0
    allowed = resolver.daemon.wait_for(lambda r: r.get("name") == ALLOWED, "allowed query event")[-1]
    assert allowed["action"] == "allow" and "198.51.100.80" in allowed["details"]["answer"]
    text = resolver.daemon.scrape()
    assert metric(text, "gcsguard_dns_queries_total", '{vendor="DJI",verdict="blocked"}') >= 1
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_log_only_blocked_queries(make_resolver):
    r = make_resolver('log_queries = "blocked"\n')
    r.dig("active.dji.com")
    r.dig("chain.allowed.example")
    r.daemon.wait_for(lambda x: x.get("name") == "active.dji.com", "blocked query")
    time.sleep(0.3)
    assert not [x for x in r.daemon.log_records() if x.get("name") == "chain.allowed.example"]
    assert metric(r.daemon.scrape(), "gcsguard_dns_queries_total", '{vendor="",verdict="forwarded"}') >= 1


def tcp_query(name: str, qid: int) -> bytes:
    q = dnslib.DNSRecord(dnslib.DNSHeader(id=qid), q=dnslib.DNSQuestion(name)).pack()
    return len(q).to_bytes(2, "big") + q


def read_tcp_answers(sock: socket.socket, count: int) -> list[dnslib.DNSRecord]:
    data, out = b"", []
    while len(out) < count:
        chunk = sock.recv(65535)
        assert chunk, "connection closed early"
        data += chunk
        while len(data) >= 2 and len(data) >= 2 + int.from_bytes(data[:2], "big"):
            size = int.from_bytes(data[:2], "big")
            out.append(dnslib.DNSRecord.parse(data[2:2 + size]))
            data = data[2 + size:]
    return out


def test_tcp_pipelining_idle_timeout_and_connection_cap(make_resolver):
    r = make_resolver("tcp_idle_timeout = 1.0\ntcp_max_connections = 2\n")
    with socket.create_connection(("127.0.0.1", r.port), timeout=5) as s:
        # three queries in one write, answered on the same connection (RFC 7766 pipelining)
        s.sendall(tcp_query(ALLOWED, 1) + tcp_query("mydjiflight.dji.com", 2) + tcp_query("chain.allowed.example", 3))
        answers = {a.header.id: a for a in read_tcp_answers(s, 3)}
        assert answers[1].header.rcode == 0 and answers[2].header.rcode == 3 and answers[3].rr
        time.sleep(1.5)                                   # idle past the timeout: closed
        assert s.recv(1) == b""
    held = [socket.create_connection(("127.0.0.1", r.port), timeout=5) for _ in range(2)]
    try:
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", r.port), timeout=5) as extra:
            try:
                extra.sendall(tcp_query(ALLOWED, 9))
                closed = extra.recv(1) == b""
            except ConnectionResetError:
                closed = True
            assert closed                                 # over the cap: closed at once
        held[0].sendall(tcp_query(ALLOWED, 10))          # positive control: held ones work
        assert read_tcp_answers(held[0], 1)[0].header.id == 10
    finally:
        for s in held:
            s.close()


def _query(name: str, additional: bytes = b"", arcount: int = 0, trailing: bytes = b"") -> bytes:
    header = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, arcount)
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    return header + qname + struct.pack("!HH", 1, 1) + additional + trailing


OPT = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"
ODD_SHAPES = {                       # what only the dnslib path reads
    "a trailing byte": lambda name: _query(name, trailing=b"\x00"),
    "two OPTs": lambda name: _query(name, OPT + OPT, 2),
    "an extra additional record": lambda name: _query(
        name, OPT + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01", 2),
}


def _ask(port: int, data: bytes) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(data, ("127.0.0.1", port))
        try:
            return s.recv(4096)
        except socket.timeout:
            return None


def test_odd_query_shapes_are_answered_and_recorded(resolver):
    """The slow path answers what it reads, for blocked, cached and new names alike, and
    each is a dns.query record; a plain query is the control."""
    assert _ask(resolver.port, _query("mydjiflight.dji.com"))[3] & 0xF == 3       # control
    resolver.dig(ALLOWED)                                                          # now cached
    for shape, make in ODD_SHAPES.items():
        for name, rcode in (("mydjiflight.dji.com", 3), (ALLOWED, 0), ("chain.allowed.example", 0)):
            reply = _ask(resolver.port, make(name))
            assert reply is not None, f"{shape}: {name}: no answer"
            assert reply[:2] == b"\x12\x34" and reply[3] & 0xF == rcode, (shape, name, reply)
    records = resolver.daemon.wait_for(lambda r: r["type"] == "dns.query" and
                                       r.get("name") == "mydjiflight.dji.com", "records", timeout=5)
    assert len(records) >= 1 + len(ODD_SHAPES)
    # an OPT owned by a name other than the root is malformed (RFC 6891 6.1.2): FORMERR, recorded
    odd = _query("mydjiflight.dji.com", b"\x03abc" + OPT[1:], 1)
    assert _ask(resolver.port, odd)[3] & 0xF == 1
    resolver.daemon.wait_for(lambda r: r["type"] == "dns.refused" and r["reason"] == "formerr"
                             and r["details"]["head_hex"] == odd.hex(), "FORMERR record", timeout=5)


def test_every_refused_message_leaves_a_record(resolver):
    notimp = bytearray(_query(ALLOWED))
    notimp[2] |= 0x10                                      # opcode 2 (STATUS)
    refused = {"short": b"\x12\x34\x01", "response": dnslib.DNSRecord.question(ALLOWED).reply().pack(),
               "formerr": bytes.fromhex("beef0100000100000000000003616263"),
               "notimp": bytes(notimp)}
    for data in refused.values():
        _ask(resolver.port, data)
    assert resolver.dig(ALLOWED).status == "NOERROR"       # the same client is still served
    for kind, data in refused.items():
        (record,) = resolver.daemon.wait_for(lambda r: r["type"] == "dns.refused" and r["reason"] == kind
                                             and r["details"]["head_hex"] == data[:128].hex(),
                                             kind, timeout=5)[-1:]
        assert record["action"] == "block" and record["device_ip"] == "127.0.0.1", record
        assert record["details"]["rcode"] == {"formerr": 1, "notimp": 4}.get(kind), record


def test_one_client_takes_neither_the_tcp_share_nor_the_memory(make_resolver):
    """A client holding its share of TCP connections gets no more, while another client is
    served; a client that sends queries and never reads the answers is not read from either,
    then dropped. A plain query from each is the control."""
    r = make_resolver("tcp_max_per_client = 4\ntcp_idle_timeout = 2.0\nrate_limit = 1000000.0\n"
                      "rate_burst = 1000000.0\n")
    held = [socket.create_connection(("127.0.0.1", r.port)) for _ in range(4)]
    try:
        extra = socket.create_connection(("127.0.0.1", r.port))
        extra.settimeout(3)
        assert extra.recv(1) == b""                               # closed at once
        assert r.dig(ALLOWED, "+tcp", source="127.0.0.2").status == "NOERROR"
    finally:
        for s in held:
            s.close()
    query = dnslib.DNSRecord.question(ALLOWED).pack()
    frame = struct.pack("!H", len(query)) + query
    greedy = socket.socket()
    greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    greedy.connect(("127.0.0.1", r.port))
    greedy.settimeout(0.5)
    try:
        for _ in range(50_000):                                   # bounded; it blocks far sooner
            greedy.sendall(frame)
    except OSError:
        pass                                                      # we stopped being read
    deadline = time.monotonic() + 15
    while metric(r.daemon.scrape(), "gcsguard_dns_tcp_dropped_total", '{reason="slow-reader"}') < 1:
        assert time.monotonic() < deadline, "the client that never reads was not dropped"
        time.sleep(0.3)
    greedy.close()
    assert r.dig(ALLOWED, "+tcp").status == "NOERROR"              # the same address, served again
    assert metric(r.daemon.scrape(), "gcsguard_dns_tcp_dropped_total", '{reason="client-share"}') >= 1
