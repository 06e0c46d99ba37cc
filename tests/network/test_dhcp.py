"""DHCP for the LAN through dnsmasq: its configuration, and a real exchange in the lab."""
import json
import socket
import sys
import textwrap

from appliance.config import load_config
from appliance.network.dhcp import render_dnsmasq
from appliance.network.lease import main as lease_main
from tests.conftest import config_file
from tests.network.test_links import wait_for

DHCP_CLIENT = textwrap.dedent("""
    import json
    from scapy.all import BOOTP, DHCP, conf, dhcp_discover, dhcp_request, get_if_hwaddr
    conf.checkIPaddr = False
    offer = dhcp_discover(iface="eth0", timeout=8, verbose=0)
    if offer is None or DHCP not in offer:
        print(json.dumps(None)); raise SystemExit
    options = dict(o for o in offer[DHCP].options if isinstance(o, tuple))
    ack = dhcp_request(requested_addr=offer[BOOTP].yiaddr, server_id=options["server_id"],
                       hostname="ctl-03", iface="eth0", timeout=3, verbose=0)
    acked = dict(o for o in ack[DHCP].options if isinstance(o, tuple))
    print(json.dumps({"mac": get_if_hwaddr("eth0"), "ip": ack[BOOTP].yiaddr,
                      "type": acked["message-type"], "router": acked["router"],
                      "dns": acked["name_server"]}))
""")



def test_dnsmasq_config_is_dhcp_only_with_gcsguard_as_router_and_resolver(tmp_path):
    config = load_config(config_file(tmp_path, extra='[network]\nlan_interfaces = ["lan0", "wlan0"]\n'
                                     'serve_dhcp = true\nserve_ntp = true\n'
                                     'dhcp_range = "10.70.0.100,10.70.0.150"\n'))
    text = render_dnsmasq(config, "/state/leases", "/state/lease-event").splitlines()
    assert "port=0" in text                                   # DNS off: gcsguard resolves
    assert "interface=lan0" in text and "interface=wlan0" in text
    assert "dhcp-range=tag:inventory,10.70.0.100,10.70.0.150,12h" in text
    assert "dhcp-range=tag:!inventory,10.70.0.119,10.70.0.150,12h" in text   # the top 32
    assert "dhcp-lease-max=51" in text and "no-ping" in text
    assert {"dhcp-option=option:router,0.0.0.0", "dhcp-option=option:dns-server,0.0.0.0",
            "dhcp-option=option:ntp-server,0.0.0.0"} <= set(text)


def test_inventory_macs_are_tagged_and_unknown_ones_can_be_refused_all(tmp_path):
    config = load_config(config_file(tmp_path, extra='[network]\nserve_dhcp = true\n'
                                     'dhcp_range = "10.70.0.100,10.70.0.150"\ndhcp_unknown_leases = 0\n'))
    text = render_dnsmasq(config, "/l", "/s", ["02:aa:00:00:00:23"]).splitlines()
    assert "dhcp-host=02:aa:00:00:00:23,set:inventory" in text
    assert [line for line in text if line.startswith("dhcp-range=")] == \
        ["dhcp-range=tag:inventory,10.70.0.100,10.70.0.150,12h"]


def test_serve_dhcp_needs_a_range(tmp_path):
    import pytest
    from appliance.config import ConfigError
    with pytest.raises(ConfigError, match="serve_dhcp needs dhcp_range"):
        load_config(config_file(tmp_path, extra="[network]\nserve_dhcp = true\n"))
    with pytest.raises(ConfigError, match="FIRST is after LAST"):
        load_config(config_file(tmp_path, extra='[network]\ndhcp_range = "10.0.0.9,10.0.0.1"\n'))


def test_lease_script_sends_one_event_and_ignores_other_calls(tmp_path):
    path = str(tmp_path / "events.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(2)
        assert lease_main([path, "init"]) == 0
        assert lease_main([path, "add", "02:AA:00:00:00:23", "10.70.0.101", "ctl-03"]) == 0
        event = json.loads(server.recv(65536))
    assert (event["type"], event["device_id"], event["device_ip"], event["name"]) == \
        ("dhcp.lease", "mac:02:aa:00:00:00:23", "10.70.0.101", "ctl-03")
    assert lease_main([str(tmp_path / "nobody-listens"), "del", "02:aa:00:00:00:23", "10.70.0.101"]) == 0


FLOOD = textwrap.dedent("""
    import json, random, sys
    from scapy.all import (BOOTP, DHCP, IP, UDP, AsyncSniffer, Ether, conf, mac2str, sendp)
    conf.checkIPaddr = False
    count, rng = int(sys.argv[1]), random.Random(7)
    macs = ["02:%02x:%02x:%02x:%02x:%02x" % tuple(rng.randrange(256) for _ in range(5)) for _ in range(count)]

    def frame(i, mac, *options):
        return (Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
                / UDP(sport=68, dport=67) / BOOTP(chaddr=mac2str(mac), xid=1000 + i, flags=0x8000)
                / DHCP(options=[*options, "end"]))

    def exchange(kind, frames):
        sniffer = AsyncSniffer(iface="eth0", filter="udp and port 68", store=True)
        sniffer.start()
        sendp(frames, iface="eth0", verbose=0)
        import time; time.sleep(3)
        replies = {}
        for p in sniffer.stop():
            if BOOTP in p and DHCP in p:
                options = dict(o for o in p[DHCP].options if isinstance(o, tuple))
                if options.get("message-type") == kind:
                    replies[p[BOOTP].xid - 1000] = (p[BOOTP].yiaddr, options.get("server_id"))
        return replies

    leased = {}
    for _ in range(3):          # rounds: a reply lost in a burst is asked for again
        waiting = [i for i in range(count) if i not in leased]
        offers = exchange(2, [frame(i, macs[i], ("message-type", "discover")) for i in waiting])
        acks = exchange(5, [frame(i, macs[i], ("message-type", "request"), ("requested_addr", ip),
                                  ("server_id", server)) for i, (ip, server) in offers.items()])
        if not acks:
            break                # the share is full: nothing more to ask for
        leased.update({i: ip for i, (ip, _) in acks.items()})
    print(json.dumps({"acks": sorted(set(leased.values()))}))
""")


def test_a_flood_of_new_macs_takes_only_the_unknown_share_of_the_pool(lab):
    """60 random MACs ask at once: 8 (the lab's dhcp_unknown_leases) get leases, from the
    top of the range, and the inventory's controller still gets its lease at once. Control:
    the unknown share is really used, and the same flood with a bigger share gets more."""
    assert lab.reload(serve_dhcp=True)
    try:
        assert wait_for(lambda: lab.metric("gcsguard_dhcp_server_up") == 1)
        out = lab.run("ctl", sys.executable, "-c", FLOOD, "60", timeout=90)
        assert out.returncode == 0, out.stderr
        flood = json.loads(out.stdout)
        assert len(flood["acks"]) == 8, flood
        assert all(143 <= int(ip.rsplit(".", 1)[1]) <= 150 for ip in flood["acks"]), flood
        assert wait_for(lambda: lab.metric("gcsguard_dhcp_leases", known="false") == 8)
        lease = json.loads(lab.run("ctl", sys.executable, "-c", DHCP_CLIENT, timeout=30).stdout)
        assert lease and lease["type"] == 5, lease                  # the inventory device: served
        assert wait_for(lambda: lab.metric("gcsguard_dhcp_leases", known="true") == 1)
        assert lab.reload(dhcp_unknown_leases=20)                   # a bigger share: more of them
        assert wait_for(lambda: lab.metric("gcsguard_dhcp_server_up") == 1)
        again = json.loads(lab.run("ctl", sys.executable, "-c", FLOOD, "60", timeout=90).stdout)
        assert len(again["acks"]) > 8, again
    finally:
        assert lab.reload(serve_dhcp=False, dhcp_unknown_leases=8)


def test_a_controller_gets_a_lease_and_the_lease_is_an_event(lab):
    assert lab.reload(serve_dhcp=True)
    after = lab.last_n()
    try:
        assert wait_for(lambda: lab.metric("gcsguard_dhcp_server_up") == 1)
        out = lab.run("ctl", sys.executable, "-c", DHCP_CLIENT, timeout=30)
        assert out.returncode == 0, out.stderr
        lease = json.loads(out.stdout)
        assert lease and lease["type"] == 5                       # DHCPACK
        assert lease["router"] == lease["dns"] == "10.70.0.1"
        assert 100 <= int(lease["ip"].rsplit(".", 1)[1]) <= 150
        assert wait_for(lambda: [e for e in lab.events(after) if e["type"] == "dhcp.lease"
                                 and e["device_id"] == f"mac:{lease['mac']}"])
    finally:
        assert lab.reload(serve_dhcp=False)
    assert wait_for(lambda: lab.metric("gcsguard_dhcp_server_up") == 0)
    out = lab.run("ctl", sys.executable, "-c", DHCP_CLIENT, timeout=30)
    assert json.loads(out.stdout) is None                       # nobody answers any more
