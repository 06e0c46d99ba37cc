"""The checks' judgement, on what clients print and what the log holds (pure)."""
import dataclasses

from appliance.config.schema import Config, GateSection, VerifySection
from appliance.verify.checks import Evidence, build, judge

CONFIG = Config(verify=VerifySection(allowed_url="https://www.allowed.example/",
                                     vendor_address="198.51.100.7"),
                gate=GateSection(enabled=True))
DIG_NX = ";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 1\n"
DIG_ANSWER = (";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1\n;; ANSWER SECTION:\n"
              "mydjiflight.dji.com. 60 IN A 198.51.100.7\n")


def checks(config=CONFIG):
    return {c.key: c for c in build(config, "10.70.0.1", "198.51.100.7", "203.0.113.10")}


def probe_record(**fields):
    return {"device_id": "probe", "action": "block", **fields}


def test_a_blocked_attempt_passes_only_with_its_record_attributed_to_the_probe():
    mqtt = checks()["mqtt"]
    record = probe_record(type="egress.blocked", details={"dst": "198.51.100.7", "dport": 1883})
    assert judge(mqtt, 1, "", [record]).status == "pass"
    unlogged = judge(mqtt, 1, "", [])
    assert unlogged.status == "fail" and unlogged.unlogged
    # the same record from a controller, or for another port, is not the probe's evidence
    for other in ({**record, "device_id": "mac:00:00:5e:00:53:23"},
                  {**record, "details": {"dst": "198.51.100.7", "dport": 443}}):
        assert judge(mqtt, 1, "", [other]).status == "fail"
    through = judge(mqtt, 0, "", [record])
    assert through.status == "fail" and "got through" in through.why and not through.unlogged


def test_dns_checks_read_the_answer():
    name = checks()["vendor-name"]
    record = probe_record(type="dns.query", name="mydjiflight.dji.com")
    assert judge(name, 0, DIG_NX, [record]).status == "pass"
    assert judge(name, 0, DIG_ANSWER, [record]).status == "fail"
    assert judge(name, 9, "", [record]).client == "no answer"
    null = DIG_ANSWER.replace("198.51.100.7", "0.0.0.0")
    assert judge(name, 0, null, [record]).status == "pass"


def test_the_positive_control_must_get_through_and_be_logged():
    allowed = checks()["allowed"]
    flow = {"device_id": "probe", "type": "tls.decision", "action": "allow", "name": "www.allowed.example"}
    assert judge(allowed, 0, "200", [flow]).status == "pass"
    assert judge(allowed, 28, "000", [flow]).status == "fail"
    assert judge(allowed, 0, "200", []).unlogged
    assert judge(allowed, 0, "403", [flow]).status == "fail"      # the gate refused it


def test_checks_that_do_not_apply_say_why():
    config = dataclasses.replace(CONFIG, gate=GateSection(enabled=False),
                                 verify=dataclasses.replace(CONFIG.verify, cname_name=""))
    skipped = {k: c.skip for k, c in checks(config).items() if c.skip}
    assert set(skipped) == {"cname-cloak", "sni-mismatch", "host-mismatch"}
    assert "gate is disabled" in skipped["sni-mismatch"]
    no_vendor = {c.key: c.skip for c in build(CONFIG, "10.70.0.1", "", "203.0.113.10")}
    assert no_vendor["vendor-ip"] and no_vendor["mqtt"] and not no_vendor["dot"]


def test_evidence_matches_on_every_given_field():
    e = Evidence(("egress.blocked",), dst="192.0.2.53", reasons=("dot",))
    good = probe_record(type="egress.blocked", reason="dot", details={"dst": "192.0.2.53"})
    assert e.matches(good)
    assert not e.matches({**good, "reason": "bypass-address"})
    assert not e.matches({**good, "action": "log"})
    assert not e.matches({**good, "type": "dns.query"})


def test_foreign_dns_must_be_answered_by_our_resolver():
    foreign = checks()["foreign-dns"]
    record = {"device_id": "probe", "type": "dns.bypass", "action": "redirect",
              "details": {"dst": "8.8.8.8"}}
    assert judge(foreign, 0, DIG_NX, [record]).status == "pass"
    dropped = judge(foreign, 9, "", [record])          # logged, but dropped instead of answered
    assert dropped.status == "fail" and "redirect is not in force" in dropped.why


def test_without_a_positive_control_no_run_can_pass():
    unset = dataclasses.replace(CONFIG, verify=dataclasses.replace(CONFIG.verify, allowed_url=""))
    assert "allowed_url is not set" in checks(unset)["allowed"].fail
    unresolved = {c.key: c for c in build(CONFIG, "10.70.0.1", "198.51.100.7", "")}
    assert unresolved["allowed"].fail == "www.allowed.example did not resolve through gcsguard's resolver"
    assert not checks()["allowed"].fail


def test_a_completed_handshake_is_through_even_when_the_client_timed_out():
    sni = checks()["sni-mismatch"]
    record = {"device_id": "probe", "type": "tls.decision", "action": "block",
              "name": "mydjiflight.dji.com"}
    cert = "Server certificate\n-----BEGIN CERTIFICATE-----\nMIIB...\n"
    assert judge(sni, 124, cert, [record]).status == "fail"
    assert judge(sni, 1, "CONNECTED(00000003)\n", [record]).status == "pass"


def test_ipv6_is_skipped_where_it_cannot_leave():
    no_route = {c.key: c.skip for c in build(CONFIG, "10.70.0.1", "198.51.100.7", "203.0.113.10",
                                             ipv6_route=False)}
    assert no_route["ipv6"] == "the appliance has no IPv6 default route: IPv6 cannot leave"
    assert not checks()["ipv6"].skip
