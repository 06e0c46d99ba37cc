"""Observation in the lab: who, which name, what happened, how many bytes, and the evidence."""
import json
import os
import subprocess
import sys
import time

import pytest
from scapy.utils import RawPcapWriter

from appliance.config import load_config
from appliance.lab.internet import ALLOWED, ALLOWED_V6, UNNAMED, VENDOR
from appliance.lab.topology import CONTROLLER_MAC, CONTROLLER_V4, LAN_V4
from appliance.observe.evidence import read_packets
from tests.network.test_links import wait_for

CTL = f"mac:{CONTROLLER_MAC}"


def new_events(lab, after, type_):
    return [e for e in lab.events(after) if e["type"] == type_]


def test_drops_and_dns_name_the_device_from_its_mac_and_inventory(lab):
    assert lab.reload(mode="vendor-block")
    after = lab.last_n()
    lab.run("ctl", "dig", f"@{LAN_V4}", "mydjiflight.dji.com")
    lab.run("ctl", "curl", "-s", "-m", "1", f"http://{VENDOR}:8080/")     # not a gate port
    assert wait_for(lambda: new_events(lab, after, "egress.blocked"))
    query, = [e for e in new_events(lab, after, "dns.query") if e["name"] == "mydjiflight.dji.com"]
    drop = new_events(lab, after, "egress.blocked")[0]
    for e in (query, drop):
        assert (e["device_id"], e["device_name"], e["device_ip"]) == (CTL, "ctl-03", CONTROLLER_V4)
    # the vendor comes from the address's provenance, whatever name this device had for it
    assert drop["vendor"] == "DJI" and "mydjiflight.dji.com" in drop["details"]["learned_names"]
    assert drop["details"]["mac"] == CONTROLLER_MAC and drop["details"]["dst"] == VENDOR


def test_direct_ip_is_flagged_and_a_looked_up_address_is_not(lab):
    assert lab.reload(mode="vendor-block")
    after = lab.last_n()
    assert lab.run("ctl", "curl", "-sf", "-m", "2", f"http://{UNNAMED}/").returncode == 0
    assert wait_for(lambda: new_events(lab, after, "bypass.direct_ip"))
    flow, = [e for e in new_events(lab, after, "egress.flow") if e["reason"] == "new"]
    assert flow["details"]["direct_ip"] is True and not flow.get("name")
    bypass, = new_events(lab, after, "bypass.direct_ip")
    # port 80 goes through the gate: handed to it ("redirect"); its verdict ends the flow
    assert bypass["action"] == "redirect" and bypass["device_name"] == "ctl-03"
    assert flow["action"] == "redirect" and flow["details"]["via"] == "gate"
    # positive control: the same address, looked up first, is attributed and not flagged
    after = lab.last_n()
    assert lab.run("ctl", "curl", "-sf", "-m", "2", "http://direct.allowed.example/").returncode == 0
    assert wait_for(lambda: [e for e in new_events(lab, after, "egress.flow") if e["reason"] == "new"])
    flow, = [e for e in new_events(lab, after, "egress.flow") if e["reason"] == "new"]
    assert flow["name"] == "direct.allowed.example" and "direct_ip" not in flow["details"]
    assert not new_events(lab, after, "bypass.direct_ip")


def test_an_allowed_download_is_counted_in_bytes(lab):
    assert lab.reload(mode="vendor-block")
    after = lab.last_n()
    size = 300_000
    got = lab.run("ctl", "curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", "-m", "5",
                  f"http://www.allowed.example/bytes/{size}")
    assert got.stdout == str(size)

    def began():
        return [e for e in new_events(lab, after, "egress.flow") if e["reason"] == "new"
                and e["details"]["dst"] == ALLOWED and e["details"]["dport"] == 80]
    assert wait_for(began)
    started, = began()

    def ended():
        return [e for e in new_events(lab, after, "egress.flow") if e["reason"] == "end"
                and e["details"]["flow_id"] == started["details"]["flow_id"]]
    assert wait_for(ended, timeout=20)
    end, = ended()
    d = end["details"]
    assert size < d["bytes_in"] < size * 1.1                # the body, plus TCP/IP and HTTP headers
    assert d["bytes_out"] < 5_000 and d["packets_in"] > 1 and d["duration_s"] >= 0
    assert end["name"] == "www.allowed.example" and end["device_name"] == "ctl-03"


def test_a_burst_over_the_log_rate_is_counted_exactly(lab):
    assert lab.reload(mode="vendor-block")
    lab.metrics_text()
    after = lab.last_n()
    before = {m: lab.metric(m, reason="dot") or 0 for m in (
        "gcsguard_firewall_packets_total", "gcsguard_firewall_unlogged_packets_total",
        "gcsguard_logged_packets_total")}
    burst = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
             "for i in range(3000):\n    s.sendto(b'x', ('198.51.100.53', 853))\n")
    assert lab.run("ctl", sys.executable, "-c", burst).returncode == 0
    def delta(m):
        return (lab.metric(m, reason="dot") or 0) - before[m]
    assert wait_for(lambda: delta("gcsguard_firewall_packets_total") == 3000)
    assert wait_for(lambda: delta("gcsguard_logged_packets_total")
                    + delta("gcsguard_firewall_unlogged_packets_total") == 3000)
    assert delta("gcsguard_firewall_unlogged_packets_total") > 0      # the limit did bite
    assert lab.metric("gcsguard_nflog_sequence_gaps_total") == 0
    assert lab.metric("gcsguard_nflog_overruns_total") == 0
    assert wait_for(lambda: [e for e in lab.events(after) if e["type"] == "firewall.accounting"
                             and e["details"]["reasons"].get("dot", {}).get("kernel", 0)
                             >= before["gcsguard_firewall_packets_total"] + 3000], timeout=15)
    summary = [e for e in lab.events(after) if e["type"] == "firewall.accounting"][-1]["details"]
    assert summary["unaccounted"] == 0


def test_pcap_evidence_reads_back_and_catches_tampering(lab, tmp_path):
    assert lab.reload(mode="vendor-block")
    start, after = time.time(), lab.last_n()
    lab.run("ctl", "curl", "-s", "-m", "1", f"http://{VENDOR}:8080/")
    assert wait_for(lambda: [e for e in lab.events(after) if e["type"] == "egress.blocked"
                             and e["details"].get("dport") == 8080])
    drop = [e for e in lab.events(after) if e["type"] == "egress.blocked" and e["details"].get("dport") == 8080][-1]
    ref = drop["details"]["pcap"]
    pcap = os.path.join(lab.directory, "log", "pcap", ref["file"])
    read = subprocess.run(["tcpdump", "-nr", pcap], capture_output=True, text=True)
    assert f"{VENDOR}.8080" in read.stdout
    out = str(tmp_path / "ctl-03.pcap")
    extracted = subprocess.run([sys.executable, "-m", "appliance", "review", "pcap",
                                os.path.join(lab.directory, "log"), "--device", "ctl-03",
                                "--from", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start - 1)),
                                "--out", out], capture_output=True, text=True)
    assert extracted.returncode == 0, extracted.stderr
    assert f"{VENDOR}.8080" in subprocess.run(["tcpdump", "-nr", out], capture_output=True, text=True).stdout
    # alter one byte of that packet in a copy: the signed event no longer matches it
    copy = tmp_path / "pcap"
    copy.mkdir()
    packets = read_packets(pcap)
    data = bytearray(packets[ref["index"]][0])
    data[-1] ^= 0xFF
    packets[ref["index"]] = (bytes(data), packets[ref["index"]][1])
    writer = RawPcapWriter(str(copy / ref["file"]), linktype=101)
    writer.write_header(None)
    for raw, when in packets:
        writer.write_packet(raw, sec=int(when), usec=int((when % 1) * 1e6))
    writer.close()
    for name in os.listdir(os.path.dirname(pcap)):
        if name != ref["file"]:
            (copy / name).write_bytes(open(os.path.join(os.path.dirname(pcap), name), "rb").read())
    tampered = subprocess.run([sys.executable, "-m", "appliance", "review", "pcap",
                               os.path.join(lab.directory, "log"), "--pcap-dir", str(copy),
                               "--device", "ctl-03", "--out", str(tmp_path / "t.pcap")],
                              capture_output=True, text=True)
    assert tampered.returncode == 1
    assert f"ALTERED: {ref['file']}#{ref['index']}" in tampered.stderr


def test_review_devices_and_timeline(lab):
    assert lab.reload(mode="vendor-block")
    lab.run("ctl", "dig", f"@{LAN_V4}", "www.allowed.example")
    lab.run("ctl", "curl", "-s", "-m", "1", f"http://{VENDOR}:8080/")
    lab.run("ctl", "curl", "-s", "-m", "2", "http://www.allowed.example/")
    time.sleep(1)
    log = os.path.join(lab.directory, "log")
    listed = subprocess.run([sys.executable, "-m", "appliance", "review", "devices", log, "-c",
                             lab.config_path, "--format", "json"], capture_output=True, text=True)
    rows = {r["device"]: r for r in map(json.loads, listed.stdout.splitlines())}
    ctl = rows[CTL]
    assert ctl["name"] == "ctl-03" and CONTROLLER_V4 in ctl["ips"] and ctl["status"] == "inventory"
    assert ctl["dns"] > 0 and ctl["blocked"] > 0 and ctl["allowed_flows"] > 0
    timeline = subprocess.run([sys.executable, "-m", "appliance", "review", "timeline", log,
                               "--device", "ctl-03", "--format", "json"], capture_output=True, text=True)
    types = [json.loads(line)["type"] for line in timeline.stdout.splitlines()]
    assert {"dns.query", "egress.blocked", "egress.flow"} <= set(types)


def test_an_unknown_device_is_announced(lab):
    after = lab.last_n()
    appliance_mac = lab.run("appl", "cat", "/sys/class/net/lan0/address").stdout.strip()
    stranger = ("from scapy.all import Ether, IP, UDP, sendp\n"
                f"sendp(Ether(src='00:00:5e:00:53:99', dst='{appliance_mac}') / "
                "IP(src='10.70.0.99', dst='198.51.100.53') / UDP(sport=4000, dport=853), "
                "iface='eth0', verbose=0)\n")
    assert lab.run("ctl", sys.executable, "-c", stranger).returncode == 0
    assert wait_for(lambda: new_events(lab, after, "device.unknown"))
    unknown, = new_events(lab, after, "device.unknown")
    assert unknown["device_id"] == "mac:00:00:5e:00:53:99" and unknown["reason"] == "not-in-inventory"
    assert not [e for e in new_events(lab, after, "device.unknown") if e["device_id"] == CTL]


HTTP_CLIENT = """
import socket, struct, sys, time
address, how = sys.argv[1:3]
sock = socket.create_connection((address, 80), timeout=10)
print(sock.getsockname()[1], flush=True)
if how == "slow-upload":                    # a body that keeps moving for about 6 s
    sock.sendall(b"POST / HTTP/1.1\\r\\nHost: www.allowed.example\\r\\nContent-Length: 6000\\r\\n\\r\\n")
    for _ in range(6):
        sock.sendall(b"x" * 1000)
        time.sleep(1)
else:                                       # one request, then a reset: conntrack keeps the
    sock.sendall(b"GET / HTTP/1.1\\r\\nHost: www.allowed.example\\r\\n\\r\\n")   # closed entry 10 s
print(sock.recv(1000).split(b"\\r\\n")[0].decode(), flush=True)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
sock.close()
"""


@pytest.mark.parametrize("server", [ALLOWED, ALLOWED_V6])
def test_progress_records_follow_traffic_not_conntrack_lifetimes(lab, server):
    """An upload still moving bytes gets progress records; a finished request whose conntrack
    entry outlives several progress intervals (closed, as in TIME_WAIT) gets none, only its end."""
    assert lab.reload(mode="vendor-block", ipv6="on" if ":" in server else "off")
    try:
        after = lab.last_n()
        ports = {}
        for how in ("slow-upload", "request"):
            out = lab.run("ctl", sys.executable, "-c", HTTP_CLIENT, server, how, timeout=20).stdout.split()
            assert out[-1] == "OK", out                                   # HTTP/1.1 200 OK
            ports[how] = int(out[0])

        def records(how: str) -> list[dict]:
            return [e for e in new_events(lab, after, "egress.flow")
                    if e["details"]["dst"] == server and e["details"]["sport"] == ports[how]]
        assert wait_for(lambda: {"new", "progress", "end"} <= {e["reason"] for e in records("slow-upload")},
                        timeout=20)
        progress = [e["details"]["bytes_out"] for e in records("slow-upload") if e["reason"] == "progress"]
        assert progress == sorted(set(progress)) and progress[-1] < 8_000     # growing, not repeated
        assert wait_for(lambda: "end" in {e["reason"] for e in records("request")}, timeout=20)
        ended, = [e for e in records("request") if e["reason"] == "end"]
        interval = load_config(lab.config_path).firewall.flow_progress_interval
        assert ended["details"]["duration_s"] > 3 * interval               # it outlived intervals...
        assert [e["reason"] for e in records("request")] == ["new", "end"]   # ...with no progress record
    finally:
        assert lab.reload(ipv6="off")
