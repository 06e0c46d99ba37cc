"""The gate's decisions, pure: the same lists, allowlist and learned addresses as the rest."""
import pytest

from appliance.firewall.learned import LearnedAddresses
from appliance.gate.decide import GatePolicy
from appliance.policy import load_policy
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
    return GatePolicy(load_policy(path), learned)


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


def test_ech_is_decided_by_address(tmp_path):
    g = gate(tmp_path)
    assert g.tls("public.ech.example", "198.51.100.80", 443, ech=True).reason == "ech"
    assert g.tls("public.ech.example", "198.51.100.10", 443, ech=True).block


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
