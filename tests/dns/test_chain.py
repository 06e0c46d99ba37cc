"""The chain's order and decisions, with a fake upstream (pure logic)."""
import asyncio

import dnslib

from appliance.dns import wire
from appliance.dns.aliases import Aliases
from appliance.dns.cache import AnswerCache
from appliance.dns.chain import Request, Sinkhole, build_chain
from appliance.lists import load
from tests.helpers import judge_of


class FakeForwarder:
    def __init__(self, answers):
        self.answers, self.asked = answers, []

    async def resolve(self, q):
        self.asked.append(q.name)
        rdata = self.answers.get(q.name)
        if rdata is None:
            return None
        reply = dnslib.DNSRecord.parse(q.raw).reply()
        for rr in rdata:
            reply.add_answer(rr)
        return bytes(reply.pack())


def run(chain, name, qtype="A"):
    q = wire.parse_query(dnslib.DNSRecord(dnslib.DNSHeader(id=7), q=dnslib.DNSQuestion(
        name, getattr(dnslib.QTYPE, qtype))).pack())
    seen = []
    record, chain.record = chain.record, lambda req, answer: (seen.append(answer), record(req, answer))
    result = chain.resolve(Request(q, "10.0.0.5", False))
    if not isinstance(result, bytes):
        result = asyncio.run(result)
    again = chain.resolve(Request(q, "x", False))       # the same query once more
    answered_at_once = isinstance(again, bytes)
    if not answered_at_once:
        asyncio.run(again)
    chain.record = record
    return seen[0], dnslib.DNSRecord.parse(result), answered_at_once


def make(tmp_path, answers, mode="vendor-block", allow=()):
    (tmp_path / "v.list").write_text("# vendor: V\n# category: vendor\nvendor.example\n")
    lists, _ = load([str(tmp_path / "v.list")], [], 0)
    recorded = []
    forwarder = FakeForwarder(answers)
    judge = judge_of(lists, mode, allow, aliases=Aliases())
    chain = build_chain(lambda req, answer: recorded.append(answer.verdict), lambda: judge,
                        AnswerCache(100, 60), forwarder, Sinkhole("nxdomain", 60), (0, 86400, 3600),
                        judge.aliases)
    return chain, forwarder, recorded


def test_order_and_verdicts(tmp_path):
    ok = [dnslib.RR("ok.example", rdata=dnslib.A("198.51.100.1"), ttl=60)]
    cloaked = [dnslib.RR("c.example", dnslib.QTYPE.CNAME, rdata=dnslib.CNAME("t.vendor.example"), ttl=60),
               dnslib.RR("t.vendor.example", rdata=dnslib.A("203.0.113.5"), ttl=60)]
    chain, forwarder, recorded = make(tmp_path, {"ok.example": ok, "c.example": cloaked})
    answer, reply, second_sync = run(chain, "x.vendor.example")
    assert answer.verdict == "blocked" and reply.header.rcode == 3 and second_sync
    assert "x.vendor.example" not in forwarder.asked               # blocked before the network
    answer, reply, second_sync = run(chain, "ok.example")
    assert answer.verdict == "forwarded" and str(reply.rr[0].rdata) == "198.51.100.1"
    assert second_sync                                              # the repeat is a cache hit
    answer, reply, _ = run(chain, "c.example")
    assert answer.verdict == "blocked" and answer.reason == "cname-list" and answer.matched == "t.vendor.example"
    assert reply.header.rcode == 3 and not reply.rr
    answer, reply, _ = run(chain, "use-application-dns.net")
    assert answer.verdict == "bypass" and reply.header.rcode == 3
    answer, reply, _ = run(chain, "gone.example")
    assert answer.verdict == "servfail" and reply.header.rcode == 2
    assert recorded.count("cached") == 1 and len(recorded) == 10    # every answer recorded once


def test_isolate_resolves_only_the_allowlist_and_its_aliases(tmp_path):
    """A name off the allowlist is answered here, and never asked upstream; the CNAME
    target an allowlisted answer named becomes resolvable in turn."""
    www = [dnslib.RR("www.allowed.example", dnslib.QTYPE.CNAME, rdata=dnslib.CNAME("edge.cdn.example"),
                     ttl=60), dnslib.RR("edge.cdn.example", rdata=dnslib.A("198.51.100.80"), ttl=60)]
    edge = [dnslib.RR("edge.cdn.example", rdata=dnslib.A("198.51.100.80"), ttl=60)]
    chain, forwarder, _ = make(tmp_path, {"www.allowed.example": www, "edge.cdn.example": edge,
                                          "data123.any.example": edge},
                               mode="isolate", allow=("allowed.example tcp/443",))
    answer, reply, _ = run(chain, "data123.any.example")
    assert (answer.verdict, answer.reason, reply.header.rcode) == ("blocked", "not-allowed", 3)
    answer, reply, _ = run(chain, "edge.cdn.example")                 # not yet an alias
    assert answer.reason == "not-allowed"
    assert forwarder.asked == []                                   # nothing left for either
    answer, reply, _ = run(chain, "www.allowed.example")              # positive control
    assert answer.verdict == "forwarded" and forwarder.asked == ["www.allowed.example"]
    answer, reply, _ = run(chain, "edge.cdn.example")
    assert answer.verdict == "forwarded" and str(reply.rr[0].rdata) == "198.51.100.80"


def test_a_failing_link_gets_servfail_a_count_and_a_record():
    """A bug on one query never leaves the client unanswered or the query unrecorded."""
    import dnslib
    from prometheus_client import CollectorRegistry

    from appliance.dns import wire
    from appliance.dns.chain import Recorder
    from appliance.dns.ratelimit import RateLimiter
    from appliance.dns.server import Frontend

    class Broken:
        def resolve(self, req):
            raise RuntimeError("a bug")
    refused = []
    recorder = Recorder(lambda req, answer: None)
    recorder.next = Broken()
    frontend = Frontend(recorder, ["127.0.0.0/8"], "refused", RateLimiter(100, 100),
                        CollectorRegistry(), lambda *a: refused.append(a))
    reply = frontend.handle(dnslib.DNSRecord.question("x.example").pack(), "127.0.0.1", False)
    assert reply[3] & 0xF == wire.SERVFAIL and frontend.errors._value.get() == 1
    assert [r[0] for r in refused] == ["internal-error"]
