"""The ruleset is a pure function of config and lists: checked as text, then by nft itself."""
import re

import pytest

from appliance.firewall.render import render
from appliance.policy import load_policy
from tests.conftest import SHIPPED_LISTS, in_netns


def policy_for(tmp_path, firewall="", network="", extra=""):
    ips = tmp_path / "lab-resolvers.ips"
    ips.write_text("# vendor: lab-public-resolver\n# category: resolver\n# type: ip\n198.51.100.53\n")
    vendor_ips = tmp_path / "vendor.ips"
    vendor_ips.write_text("# vendor: DJI\n# category: vendor\n# type: ip\n203.0.113.0/28\n2001:db8:10::/48\n")
    blocks = ", ".join(f'"{p}"' for p in [*SHIPPED_LISTS, str(ips), str(vendor_ips)])
    path = tmp_path / "gcsguard.toml"
    path.write_text(f"""
[lists]
block = [{blocks}]
[dns]
listen = ["10.70.0.1:5353"]
upstreams = ["192.0.2.53:53", "[2001:db8::53]:53"]
[metrics]
listen = ["10.71.0.1:9253"]
[network]
lan_interfaces = ["lan0", "wlan0"]
wan_interface = "wan0"
management_interfaces = ["mgmt0"]
management_networks = ["10.71.0.0/24"]
ntp_servers = ["192.0.2.123"]
appliance_egress = ["192.0.2.200 tcp/9093"]
{network}
[firewall]
allow = ["www.allowed.example tcp/80,443", "198.51.100.0/28 tcp/443", "203.0.113.200"]
{firewall}
{extra}
""")
    return load_policy(str(path))


def chain(text: str, name: str) -> list[str]:
    body = re.search(rf"\n  chain {name} {{\n(.*?)\n  }}", text, re.S).group(1)
    return [line.strip() for line in body.splitlines()]


def test_one_table_replaced_atomically(tmp_path):
    text = render(policy_for(tmp_path))
    assert text.startswith("table inet gcsguard\ndelete table inet gcsguard\ntable inet gcsguard {")
    assert set(re.findall(r"table (\w+ \w+)", text)) == {"inet gcsguard"}   # no other table


def test_every_mode_closes_the_bypasses(tmp_path):
    for mode in ("isolate", "vendor-block", "audit"):
        p = policy_for(tmp_path, f'mode = "{mode}"')
        text = render(p)
        nat = chain(text, "dns_redirect")
        assert 'iifname { "lan0", "wlan0", "gcsprobe0" } meta l4proto { tcp, udp } th dport 53 ct event set 0 redirect to :5353' in nat
        assert any("fib daddr type != local jump log_dns_bypass" in r for r in nat)
        egress = chain(text, "lan_egress")
        assert "meta l4proto { tcp, udp } th dport 853 jump drop_dot" in egress
        assert "udp dport 443 jump drop_quic" in egress
        assert "meta nfproto ipv6 jump drop_ipv6" in egress
        assert "ip daddr @bypass_v4 jump drop_bypass_address" in egress
        assert "ip daddr @learned_bypass_v4 jump drop_bypass_address" in egress
        # bypass and vendor checks come before established flows are let through
        assert egress.index("ip daddr @bypass_v4 jump drop_bypass_address") < \
            egress.index("ct state established,related accept")


def test_modes_differ_only_where_they_should(tmp_path):
    isolate = chain(render((policy_for(tmp_path, 'mode = "isolate"'))), "lan_egress")
    block = chain(render((policy_for(tmp_path, 'mode = "vendor-block"'))), "lan_egress")
    audit = chain(render((policy_for(tmp_path, 'mode = "audit"'))), "lan_egress")
    assert isolate[-1] == "jump drop_not_allowed" and block[-1] == "accept" and audit[-1] == "accept"
    assert "ip daddr @learned_allow_v4 accept" in isolate and "ip daddr @learned_allow_v4 accept" not in block
    assert "ip daddr @vendor_v4 jump drop_vendor_address" in block
    assert "ip daddr @vendor_v4 jump log_audit_vendor" in audit
    assert not any("drop_vendor" in r for r in audit)


def test_sets_hold_lists_allowlist_and_learned(tmp_path):
    p = policy_for(tmp_path)
    text = render(p, {"learned_vendor": ["203.0.113.10", "2001:db8::10"],
                                      "learned_allow_svc": [("198.51.100.80", ("tcp", "443"))]})
    sets = dict(re.findall(r"set (\w+) \{\n(.*?)\n  \}", text, re.S))
    assert "198.51.100.53" in sets["bypass_v4"] and "198.51.100.53" not in sets["vendor_v4"]
    assert "203.0.113.0/28" in sets["vendor_v4"] and "2001:db8:10::/48" in sets["vendor_v6"]
    assert "203.0.113.10" in sets["learned_vendor_v4"] and "2001:db8::10" in sets["learned_vendor_v6"]
    assert "198.51.100.0/28 . tcp . 443" in sets["allow_svc_v4"]
    assert "203.0.113.200" in sets["allow_v4"]
    assert "198.51.100.80 . tcp . 443" in sets["learned_allow_svc_v4"]


def test_appliance_answers_lan_dns_and_management_only(tmp_path):
    p = policy_for(tmp_path)
    text = render(p)
    inp = chain(text, "input")
    assert 'iifname { "lan0", "wlan0", "gcsprobe0" } meta l4proto { tcp, udp } th dport 5353 ct event set 0 accept' in inp
    assert 'iifname { "mgmt0" } tcp dport { 9253 } accept' in inp
    assert "ip saddr { 10.71.0.0/24 } tcp dport { 9253 } accept" in inp
    assert inp[-2:] == ['iifname "wan0" jump drop_wan_input', "jump drop_input"]
    assert not any("dport 67" in r or "dport 123" in r for r in inp)       # not serving DHCP/NTP
    served = render((policy_for(tmp_path, network='serve_dhcp = true\nserve_ntp = true\n'
                                               'dhcp_range = "10.70.0.100,10.70.0.150"')))
    assert 'iifname { "lan0", "wlan0", "gcsprobe0" } udp dport 67 accept' in chain(served, "input")
    out = chain(text, "output")
    assert 'oifname "wan0" ip daddr 192.0.2.53/32 tcp dport { 53 } accept' in out
    assert 'oifname "wan0" ip6 daddr 2001:db8::53/128 udp dport { 53 } accept' in out
    assert 'oifname "wan0" ip daddr 192.0.2.123/32 udp dport { 123 } accept' in out
    assert 'oifname != { "lan0", "wlan0", "gcsprobe0" } ip daddr 192.0.2.200/32 tcp dport { 9093 } accept' in out
    assert out[-1] == "jump drop_appliance_egress"


def test_the_log_collector_is_reachable_by_tcp_only_when_configured(tmp_path):
    rule = 'oifname != { "lan0", "wlan0", "gcsprobe0" } ip daddr 10.72.255.1/32 tcp dport { 2514 } accept'
    assert rule not in chain(render(policy_for(tmp_path)), "output")
    shipped = render(policy_for(tmp_path, extra='[ship]\ncollector = "10.72.255.1:2514"'))
    assert rule in chain(shipped, "output")
    assert not [r for r in chain(shipped, "output") if "10.72.255.1" in r and r != rule]


@pytest.mark.parametrize("firewall, network", [
    ('mode = "isolate"', ""), ('mode = "vendor-block"\nquic = true', 'ipv6 = "on"'),
    ('mode = "audit"', "masquerade = false")])
def test_nft_accepts_the_ruleset(tmp_path, scratch_netns, firewall, network):
    """Real nft, in a namespace of our own: loads, and loads again over itself."""
    p = policy_for(tmp_path, firewall, network)
    path = tmp_path / "ruleset.nft"
    path.write_text(render(p, {"learned_vendor": ["203.0.113.10"],
                                               "learned_allow": ["198.51.100.80"]}))
    in_netns(scratch_netns, "nft", "-c", "-f", str(path))
    in_netns(scratch_netns, "nft", "-f", str(path))
    in_netns(scratch_netns, "nft", "-f", str(path))
    listed = in_netns(scratch_netns, "nft", "list", "set", "inet", "gcsguard", "learned_vendor_v4").stdout
    assert "203.0.113.10" in listed
    assert ("jump drop_quic" in path.read_text()) == ("quic = true" not in firewall)
    assert ("jump drop_ipv6" in path.read_text()) == ('ipv6 = "on"' not in network)
