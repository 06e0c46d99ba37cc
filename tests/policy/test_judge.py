"""The judge, pure: names, answers, connections, ClientHellos and requests, in each mode."""
import pytest

from appliance.firewall.learned import LearnedAddresses
from appliance.policy import Judge, load_policy
from tests.conftest import SHIPPED_LISTS, config_file


def gate(tmp_path, mode="vendor-block", allow=()):
    ips = tmp_path / "vendor.ips"
    ips.write_text("# vendor: DJI\n# category: vendor\n# type: ip\n203.0.113.0/28\n")
    allowed = ", ".join(f'"{a}"' for a in allow)
    path = config_file(tmp_path, block=[*SHIPPED_LISTS, str(ips)],
                       firewall=f'mode = "{mode}"\nallow = [{allowed}]')
    learned = LearnedAddresses()
    learned.observe("vendor", "mydjiflight.dji.com", ["198.51.100.10"], 1.0)
    learned.observe("bypass", "dns.google", ["198.51.100.53"], 1.0)
    return Judge(load_policy(path), learned)


@pytest.mark.parametrize("sni, address, block, reason", [
    ("www.allowed.example", "198.51.100.80", False, "sni-allowed"),
    ("mydjiflight.dji.com", "198.51.100.80", True, "sni-list"),           # vendor SNI, any address
    ("www.allowed.example", "198.51.100.10", True, "vendor-address"),      # learned vendor address
    ("www.allowed.example", "203.0.113.5", True, "vendor-address"),        # listed vendor network
    (None, "198.51.100.10", True, "vendor-address"),                       # no SNI: by address
    (None, "198.51.100.80", False, "no-sni"),
    ("dns.google", "198.51.100.99", True, "sni-list"),                    # a DoH resolver by name
    (None, "198.51.100.53", True, "bypass-address")])
def test_tls_in_vendor_block(tmp_path, sni, address, block, reason):
    decision = gate(tmp_path).tls(sni, address, 443)
    assert (decision.block, decision.reason) == (block, reason)


def test_a_bad_sni_is_refused_except_in_audit(tmp_path):
    refused = gate(tmp_path).tls("a\\x00b.example", "198.51.100.80", 443, sni_valid=False)
    assert (refused.block, refused.reason) == (True, "bad-sni")
    by_address = gate(tmp_path, "audit").tls("x", "198.51.100.80", 443, sni_valid=False)
    assert not by_address.block


def test_a_host_that_is_not_text_is_refused_except_in_audit(tmp_path):
    for host in ("mydji\udcffflight.dji.com", "a b.example", "x\x00.example"):
        refused = gate(tmp_path).http(host, "/", "198.51.100.80", 80)
        assert (refused.block, refused.reason) == (True, "bad-host"), host
    assert not gate(tmp_path).http("www.allowed.example", "/", "198.51.100.80", 80).block  # control
    assert not gate(tmp_path, "audit").http("x\udcff", "/", "198.51.100.80", 80).block
    assert gate(tmp_path, "audit").http("x\udcff", "/", "198.51.100.10", 80).block is False  # audited


def test_isolate_allows_only_the_allowlist_by_name_or_address_and_port(tmp_path):
    g = gate(tmp_path, "isolate", ["www.allowed.example tcp/443", "198.51.100.250 tcp/80"])
    assert not g.tls("www.allowed.example", "198.51.100.80", 443).block
    assert g.tls("cdn.other.example", "198.51.100.80", 443).reason == "not-allowed"
    assert not g.http("198.51.100.250", "/", "198.51.100.250", 80).block
    assert g.http("198.51.100.250", "/", "198.51.100.250", 8080).reason == "not-allowed"
    assert g.http("www.allowed.example", "/", "198.51.100.80", 80).reason == "not-allowed"


def test_http_host_and_httpdns_shapes(tmp_path):
    g = gate(tmp_path)
    assert g.http("api.dji.com", "/v1/upload", "198.51.100.80", 80).reason == "host-list"
    for path in ("/d?dn=mydjiflight.dji.com", "/resolve?name=x.example", "/dns-query?dns=AAAB"):
        assert g.http("www.allowed.example", path, "198.51.100.80", 80).reason == "httpdns-request"
    assert not g.http("www.allowed.example", "/d", "198.51.100.80", 80).block      # no dn=
    assert not g.http("www.allowed.example", "/index.html", "198.51.100.80", 80).block


def test_audit_lets_vendors_through_but_not_bypasses(tmp_path):
    g = gate(tmp_path, "audit")
    audited = g.tls("mydjiflight.dji.com", "198.51.100.80", 443)
    assert (audited.block, audited.reason, audited.vendor) == (False, "audit-vendor", "DJI")
    assert g.tls(None, "198.51.100.10", 443).reason == "audit-vendor"
    assert g.tls("dns.google", "198.51.100.99", 443).block                # DoH stays closed


def test_names_in_each_mode(tmp_path):
    block, isolate, audit = gate(tmp_path), gate(tmp_path, "isolate", ["www.allowed.example"]), \
        gate(tmp_path, "audit")
    assert (block.name("x1.dji.com").action, block.name("x1.dji.com").reason) == ("block", "name-list")
    assert block.name("data.any.example").action == "allow"               # vendor-block forwards it
    assert isolate.name("data.any.example")[:2] == ("block", "not-allowed")
    assert isolate.name("cdn.www.allowed.example")[:2] == ("allow", "allowlisted")
    assert isolate.name("x1.dji.com").vendor == "DJI"                      # the list's word first
    assert audit.name("x1.dji.com").action == "audit" and audit.name("dns.google").block
    aliased = Judge(isolate.policy, aliases={"edge.cdn.example"})
    assert aliased.name("edge.cdn.example").action == "allow"


def test_the_listed_name_behind_an_address_not_the_cdn_alias(tmp_path):
    g = gate(tmp_path)
    g.learned.observe("vendor", "edge.akamai.example", ["198.51.100.11"], 2.0)
    g.learned.observe("vendor", "api.dji.com", ["198.51.100.11"], 3.0)
    verdict = g.tls(None, "198.51.100.11", 443)
    assert (verdict.name, verdict.vendor) == ("api.dji.com", "DJI")


def test_isolate_refusals_name_the_vendor(tmp_path):
    g = gate(tmp_path, "isolate", ["www.allowed.example tcp/443"])
    assert g.tls("api.dji.com", "198.51.100.99", 443).vendor == "DJI"
    assert g.tls("www.allowed.example", "198.51.100.10", 443).vendor == "DJI"   # a vendor address


def test_httpdns_names_what_it_asked(tmp_path):
    refused = gate(tmp_path).http("198.51.100.99", "/139450/d?host=api.dji.com", "198.51.100.99", 80)
    assert (refused.reason, refused.name, refused.vendor) == ("httpdns-request", "api.dji.com", "DJI")
    assert gate(tmp_path, "audit").http("h.example", "/d?dn=x.example", "198.51.100.99", 80).block


def test_isolate_a_nameless_connection_to_an_allowlisted_names_address(tmp_path):
    g = gate(tmp_path, "isolate", ["www.allowed.example tcp/443"])
    g.learned.observe("allow", "www.allowed.example", ["198.51.100.80"], 1.0)
    assert g.connection("198.51.100.80", 443).action == "allow"
    assert g.connection("198.51.100.80", 80).reason == "not-allowed"              # not its port
    assert g.tls("other.example", "198.51.100.80", 443).reason == "not-allowed"   # a name decides


def test_every_reason_is_in_the_one_vocabulary(tmp_path):
    from appliance.policy.reasons import JUDGE
    reasons = set()
    for mode in ("isolate", "vendor-block", "audit"):
        g = gate(tmp_path, mode, ["www.allowed.example tcp/443", "198.51.100.250 tcp/80"])
        for name in ("x.dji.com", "dns.google", "www.allowed.example", "other.example"):
            reasons.add(g.name(name).reason)
            for address in ("198.51.100.10", "198.51.100.53", "203.0.113.5", "198.51.100.250", "192.0.2.9"):
                reasons.add(g.tls(name, address, 443).reason)
                reasons.add(g.tls(name, address, 443, sni_valid=False).reason)
                reasons.add(g.tls(None, address, 80).reason)
                reasons.add(g.http(name, "/", address, 80).reason)
                reasons.add(g.http("", "/d?dn=x.example", address, 80).reason)
                reasons.add(g.connection(address, 8883).reason)
    assert reasons <= JUDGE, reasons - JUDGE
    assert {"not-allowed", "sni-list", "vendor-address", "bad-sni", "audit-vendor"} <= reasons
