"""The learner against the lab zone, answered in-process (pure logic: no sockets)."""
import asyncio

import dnslib

from appliance.dns import wire
from appliance.dns.chain import Answer, Request
from appliance.firewall.learn import Learner, answer_addresses, make_query
from appliance.firewall.learned import LearnedAddresses
from appliance.lab.zone import Zone
from appliance.lists import load
from appliance.policy.allow import parse_allow


def lists_from(tmp_path, vendor_names, doh_names=()):
    vendor = tmp_path / "vendor.list"
    vendor.write_text("# vendor: DJI\n# category: vendor\n" + "\n".join(vendor_names) + "\n")
    doh = tmp_path / "doh.list"
    doh.write_text("# vendor: public-resolver\n# category: doh\n" + "\n".join(doh_names) + "\n")
    return load([str(vendor), str(doh)], [], 10)[0]


class FakeUpstream:
    def __init__(self) -> None:
        self.zone, self.asked = Zone(), []

    async def __call__(self, q: wire.Query) -> bytes:
        self.asked.append((q.name, q.qtype))
        return self.zone.answer(dnslib.DNSRecord.parse(q.raw or _message(q))).pack()


def _message(q: wire.Query) -> bytes:
    return wire.HEADER.pack(q.id, q.flags, 1, 0, 0, 0) + q.question


async def learn_until_idle(learner: Learner) -> None:
    task = asyncio.create_task(learner.run())
    for _ in range(200):
        await asyncio.sleep(0.01)
        if learner.pending() == 0:
            break
    task.cancel()


def test_make_query_is_a_well_formed_question():
    q = make_query("mydjiflight.dji.com", wire.AAAA)
    parsed = dnslib.DNSRecord.parse(_message(q))
    assert str(parsed.q.qname) == "mydjiflight.dji.com." and parsed.q.qtype == wire.AAAA


def test_lists_and_allowlist_are_resolved_with_their_kind(tmp_path):
    store, upstream, new = LearnedAddresses(), FakeUpstream(), []
    learner = Learner(store, upstream, lambda k, n, a: new.append((k, n, tuple(a))), 60.0, rate=1000)
    learner.set_policy(lists_from(tmp_path, ["mydjiflight.dji.com", "*.wildcard-only.dji.com"],
                                  ["dns.google"]),
                       [parse_allow("www.allowed.example tcp/443")])
    asyncio.run(learn_until_idle(learner))
    assert set(store.kinds["vendor"]) == {"203.0.113.10", "2001:db8::10"}
    assert set(store.kinds["bypass"]) == {"198.51.100.53"}
    assert store.services("198.51.100.80", learner.allow_entry) == (False, {("tcp", "443")})
    assert ("vendor", "mydjiflight.dji.com", ("203.0.113.10",)) in new
    assert not any(name.startswith("wildcard-only") for name, _ in upstream.asked)   # `*.x`: not a name


def test_cname_targets_of_vendor_names_are_learned_too(tmp_path):
    store, upstream = LearnedAddresses(), FakeUpstream()
    learner = Learner(store, upstream, lambda *a: None, 60.0, rate=1000)
    learner.set_policy(lists_from(tmp_path, ["telemetry.allowed.example"]), [])
    asyncio.run(learn_until_idle(learner))
    assert ("api.dji.com", wire.A) in upstream.asked and ("edge.allowed.example", wire.A) in upstream.asked
    assert "203.0.113.12" in store.kinds["vendor"]
    assert store.about("203.0.113.12")["vendor"]["names"].keys() >= {"telemetry.allowed.example"}


def request(name, verdict="forwarded", match=None, summary=(), reason="forwarded", matched=""):
    return Request(q=make_query(name, wire.A), client="10.70.0.23", tcp=False), \
        Answer(b"", verdict, reason, match, matched, tuple(summary))


def test_resolver_answers_feed_the_sets_before_they_leave(tmp_path):
    lists = lists_from(tmp_path, ["dji.com"])
    store, added = LearnedAddresses(), []
    learner = Learner(store, FakeUpstream(), lambda k, n, a: added.append((k, n, a)), 60.0)
    learner.set_policy(lists, [parse_allow("allowed.example")])
    # an allowlisted name's answer: its addresses are allowed at once (any port)
    learner.observe(*request("www.allowed.example", summary=["198.51.100.80", "CNAME x.example"]))
    assert added == [("allow", "www.allowed.example", ["198.51.100.80"])]
    assert store.services("198.51.100.80", learner.allow_entry) == (True, set())
    # an answer for a name on no allowlist teaches nothing
    learner.observe(*request("elsewhere.example", summary=["192.0.2.77"]))
    assert "192.0.2.77" not in store.kinds["allow"]
    # a name the resolver refused is never looked up (its labels could carry a client's data)
    match, pending = lists.domains.match("flighthub.dji.com"), learner.pending()
    learner.observe(*request("c2VjcmV0.flighthub.dji.com", "blocked", match))
    assert "c2VjcmV0.flighthub.dji.com" not in learner._known and learner.pending() == pending
    # an allowed query's answer that the judge blocked by its CNAME: its addresses are learned
    # under the listed name that matched, with no lookup of either
    learner.observe(*request("telemetry.other.example", "blocked", match,
                             ["CNAME api.dji.com", "203.0.113.12"], "cname-list", "api.dji.com"))
    assert store.about("203.0.113.12")["vendor"]["names"].keys() == {"api.dji.com"}
    assert learner.pending() == pending
    # audit mode: the device got the vendor's addresses, so they are learned right away
    learner.observe(*request("mydjiflight.dji.com", "audited", match, ["203.0.113.10"]))
    assert "203.0.113.10" in store.kinds["vendor"]


def test_answer_addresses_reads_ttl_and_cnames():
    q = dnslib.DNSRecord.question("telemetry.allowed.example")
    addresses, targets, ttl = answer_addresses(Zone().answer(q).pack())
    assert addresses == ["203.0.113.12"] and targets == ["edge.allowed.example", "api.dji.com"]
    assert ttl == 300


def test_the_schedule_follows_ttls_failures_and_missing_names(tmp_path):
    store, upstream = LearnedAddresses(), FakeUpstream()
    learner = Learner(store, upstream, lambda *a: None, 60.0)
    assert asyncio.run(learner.refresh("mydjiflight.dji.com", "vendor")) == 300      # the zone's TTL
    assert asyncio.run(learner.refresh("short.allowed.example", "allow")) == 30       # run() waits 60
    assert asyncio.run(learner.refresh("absent.dji.com", "vendor")) == 3600          # NXDOMAIN: an hour

    async def silent(q):
        return None
    learner.resolve = silent
    assert asyncio.run(learner.refresh("mydjiflight.dji.com", "vendor")) == 60       # retry soon
