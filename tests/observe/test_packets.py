"""Logged packets become events with their reason, 5-tuple and attribution."""

import dnslib
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6

from appliance.config import Config
from appliance.firewall.learned import LearnedAddresses
from appliance.lists import load
from appliance.observe.annotate import Annotator
from appliance.observe.attribution import Attribution
from appliance.observe.devices import Devices
from appliance.observe.nflog import LoggedPacket
from appliance.observe.packets import PacketEvents, five_tuple
from appliance.policy import Judge, Policy
from appliance.policy.inventory import parse_inventory
from tests.helpers import RecordingBus


def test_five_tuple_v4_and_v6():
    v4 = bytes(IP(src="10.70.0.23", dst="203.0.113.10") / TCP(sport=40000, dport=443))
    assert five_tuple(v4) == {"src": "10.70.0.23", "dst": "203.0.113.10", "proto": "tcp",
                              "sport": 40000, "dport": 443, "l4_offset": 20}
    v6 = bytes(IPv6(src="fd00:70::23", dst="2001:db8::80") / UDP(sport=5000, dport=443))
    assert five_tuple(v6)["dst"] == "2001:db8::80" and five_tuple(v6)["proto"] == "udp"
    assert five_tuple(b"") == {} and five_tuple(b"\x45\x00") == {}


def setup(tmp_path):
    ips = tmp_path / "vendor.ips"
    ips.write_text("# vendor: DJI\n# category: vendor\n# type: ip\n203.0.113.0/28\n")
    names = tmp_path / "dji.list"
    names.write_text("# vendor: DJI\n# category: vendor\ndji.com\n")
    lists = load([str(ips), str(names)], [], 5)[0]
    learned = LearnedAddresses()
    learned.observe("vendor", "api.dji.com", ["198.51.100.12"], 1.0)
    learned.observe("vendor", "a1.cdn.akamai.example", ["198.51.100.12"], 1.0)   # a CDN alias on the way
    bus = RecordingBus()
    devices = Devices(parse_inventory(["02:00:00:00:00:23 ctl-03 controller DJI"]), bus)
    judge = Judge(Policy(Config(), lists, ()), learned)
    annotator = Annotator(bus, lambda: judge, Attribution(), devices)
    return bus, PacketEvents(bus, annotator, {"lo"})


def packet(prefix, payload):
    return LoggedPacket(prefix, 2, 1, 0, "02:00:00:00:00:23", payload, 1, None)   # in on "lo"


def of_type(bus, *types):
    return [e for e in bus.events if e["type"] in types]


def test_drops_carry_reason_and_vendor(tmp_path):
    bus, handle = setup(tmp_path)
    handle(packet("gcsguard vendor-address ", bytes(IP(src="10.70.0.23", dst="203.0.113.5") / TCP(dport=443))))
    handle(packet("gcsguard vendor-learned ", bytes(IP(src="10.70.0.23", dst="198.51.100.12") / TCP(dport=8883))))
    handle(packet("someone else's prefix", b"\x45"))
    seen, = of_type(bus, "device.seen")
    assert seen["device_name"] == "ctl-03" and seen["details"]["role"] == "controller"
    static, learned = of_type(bus, "egress.blocked")
    assert static["reason"] == "vendor-address" and static["device_name"] == "ctl-03"
    assert static["device_id"] == "mac:02:00:00:00:00:23"
    assert static["vendor"] == "DJI" and static["details"]["list_entry"] == "203.0.113.0/28"
    assert static["details"]["mac"] == "02:00:00:00:00:23" and static["device_ip"] == "10.70.0.23"
    assert learned["name"] == "api.dji.com" and learned["vendor"] == "DJI"      # the listed name
    assert learned["details"]["dport"] == 8883
    # neither address came from DNS for this device: both are direct-ip, and raised as such
    assert static["details"]["direct_ip"] and learned["details"]["direct_ip"]
    assert [e["details"]["dst"] for e in of_type(bus, "bypass.direct_ip")] == ["203.0.113.5",
                                                                               "198.51.100.12"]


def test_dns_bypass_names_the_question(tmp_path):
    bus, handle = setup(tmp_path)
    query = dnslib.DNSRecord.question("mydjiflight.dji.com").pack()
    handle(packet("gcsguard dns-bypass ", bytes(IP(src="10.70.0.23", dst="198.51.100.53")
                                               / UDP(sport=5555, dport=53) / query)))
    event, = of_type(bus, "dns.bypass")
    assert (event["type"], event["action"], event["name"]) == ("dns.bypass", "redirect", "mydjiflight.dji.com")
    assert event["details"]["dst"] == "198.51.100.53"
