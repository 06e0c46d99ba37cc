"""Enforcement in the lab with real clients: every technique, every mode, and failure cases.

Every "blocked" is judged by the simulated internet's own record (it received
nothing), and every test has a positive control: an allowed flow succeeds, or the
same packet does arrive once the rules are opened.
"""
import os
import signal
import subprocess
import sys
import time

import pytest

from appliance.lab.internet import ALLOWED, ALLOWED_V6, HARDCODED, VENDOR, VENDOR_V6
from appliance.lab.scenario import run_one, techniques
from appliance.lab.topology import LAN_V4, WAN_V4, ns_exec
from tests.network.test_links import wait_for

# What the appliance must log for each technique (event type, reason), by mode.
EXPECTED = {"vendor-name": ("dns.query", "name-list"), "cname-cloak": ("dns.query", "cname-list"),
            "vendor-ip": ("egress.blocked", "vendor-learned"), "mqtt": ("egress.blocked", "vendor-learned"),
            "foreign-dns": ("dns.bypass", "dns-bypass"), "dot": ("egress.blocked", "dot"),
            "doh": ("egress.blocked", "bypass-address"), "httpdns": ("egress.blocked", "bypass-address"),
            "quic": ("egress.blocked", "quic"), "ipv6": ("egress.blocked", "ipv6"),
            "ipv6-vendor": ("egress.blocked", "ipv6"), "unlisted": ("egress.blocked", "not-allowed")}
AUDIT = {"vendor-ip": ("egress.audit", "audit-vendor"), "mqtt": ("egress.audit", "audit-vendor")}
# With the gate on, the web ports (80, 443) are decided by the gate, by SNI, Host or address.
GATE = {"vendor-ip": ("tls.decision", "vendor-address"), "doh": ("tls.decision", "bypass-address"),
        "httpdns": ("http.decision", "httpdns-request"), "unlisted": ("tls.decision", "not-allowed")}
GATE_AUDIT = {"vendor-ip": ("tls.decision", "audit-vendor")}
# isolate resolves only the allowlist: an unlisted name that CNAMEs to a vendor never gets asked
ISOLATE = {"cname-cloak": ("dns.query", "not-allowed"), "unlisted": ("dns.query", "not-allowed")}


@pytest.mark.parametrize("mode", ["isolate", "vendor-block", "audit"])
def test_every_technique_in_each_mode(lab, mode):
    assert lab.reload(mode=mode, ipv6="off", allow=["www.allowed.example tcp/80,443"])
    results = {t.key: run_one(lab, t) for t in techniques(lab.pki["ca"])}
    wrong = {k: (r.outcome, r.client, r.appliance) for k, r in results.items() if not r.ok}
    assert not wrong
    assert results["allowed"].outcome == "allowed" and results["allowed"].hits   # positive control
    for key, result in results.items():
        expected = {**EXPECTED, **(AUDIT if mode == "audit" else {}), **GATE,
                    **(GATE_AUDIT if mode == "audit" else {}),
                    **(ISOLATE if mode == "isolate" else {})}.get(key)
        if expected and result.technique.expect[mode] != "allowed":
            seen = {(e["type"], e["reason"]) for e in result.events}
            assert expected in seen, (key, seen)
            # ... and names the device by its inventory entry (MAC), not only its address
            named = [e for e in result.events if (e["type"], e["reason"]) == expected]
            assert all(e.get("device_name") == "ctl-03" for e in named), (key, named)


def test_isolate_passes_only_the_allowlist_and_its_ports(lab):
    assert lab.reload(mode="isolate", allow=["www.allowed.example tcp/443", f"{HARDCODED} tcp/80"])
    assert curl(lab, "https://www.allowed.example/", "--cacert", lab.pki["ca"]) == "200"
    start = time.time()
    assert curl(lab, "http://www.allowed.example/") in CUT            # port 80 not listed for it
    assert curl(lab, f"http://{HARDCODED}/") == "200"                 # an address entry
    assert curl(lab, f"https://{HARDCODED}/", "-k") in CUT            # ... on its port only
    assert curl(lab, f"https://{VENDOR}/", "-k") in CUT
    reached = {(h["addr"], h["port"]) for h in lab.hits(after=start)}
    assert reached == {(HARDCODED, 80)}


def test_tls_handshakes_with_openssl(lab):
    """The allowed server's real certificate verifies; the vendor's handshake never starts."""
    assert lab.reload(mode="vendor-block")
    start = time.time()
    allowed = lab.run("ctl", "timeout", "5", "openssl", "s_client", "-brief", "-connect",
                      f"{ALLOWED}:443", "-servername", "www.allowed.example", "-CAfile", lab.pki["ca"],
                      "-verify_return_error")
    assert "Verification: OK" in allowed.stdout + allowed.stderr
    vendor = lab.run("ctl", "timeout", "3", "openssl", "s_client", "-brief", "-connect",
                     f"{VENDOR}:443", "-servername", "mydjiflight.dji.com", "-CAfile", lab.pki["ca"])
    assert vendor.returncode != 0 and "Verification" not in vendor.stdout + vendor.stderr
    hits = lab.hits(after=start)
    assert [h for h in hits if h["addr"] == ALLOWED and h["sni"] == "www.allowed.example"]
    assert not [h for h in hits if h["addr"] == VENDOR]


def test_ipv6_on_follows_the_same_policy(lab):
    assert lab.reload(mode="vendor-block", ipv6="on")
    try:
        assert curl(lab, f"http://[{ALLOWED_V6}]/") == "200"          # positive control
        assert curl(lab, f"http://[{VENDOR_V6}]/") in CUT             # learned vendor v6 address
        assert curl(lab, "-6", "--cacert", lab.pki["ca"], "https://mydjiflight.dji.com/") in CUT
        assert not [h for h in lab.hits(after=time.time() - 10) if h["addr"] == VENDOR_V6]
    finally:
        assert lab.reload(ipv6="off")


def test_kill_9_leaves_every_vendor_attempt_blocked_until_firewall_open(lab):
    assert lab.reload(mode="vendor-block")
    start = time.time()
    stream = subprocess.Popen(ns_exec(lab.ns.ctl, "bash", "-c", (
        f"for i in $(seq 40); do timeout 0.3 nc -z {VENDOR} 1883; sleep 0.05; done")))
    time.sleep(1.0)
    os.kill(lab.state.pids["appliance"], signal.SIGKILL)
    lab.appliance.wait(timeout=10)
    try:
        stream.wait(timeout=60)
        assert table_in_force(lab)
        assert not [h for h in lab.hits(after=start) if h["addr"] == VENDOR]
        # positive control: the same attempt, with the rules explicitly opened, arrives
        opened = lab.run("appl", sys.executable, "-m", "appliance", "firewall", "open", "--reason",
                         "kill -9 test positive control", "-c", lab.config_path)
        assert opened.returncode == 0, opened.stderr
        assert not table_in_force(lab)
        assert lab.run("ctl", "nc", "-z", "-w", "2", VENDOR, "1883").returncode == 0
        assert wait_for(lambda: [h for h in lab.hits(after=start)        # the server's own record
                                 if h["addr"] == VENDOR and h["service"] == "mqtt"])
        # the opening is on the record, written directly since the daemon was down
        assert [e for e in lab.events() if e["type"] == "firewall.opened"
                and e["details"]["why"] == "kill -9 test positive control"]
    finally:
        lab.start_appliance()                                        # and blocking is back
    again = time.time()
    assert lab.run("ctl", "nc", "-z", "-w", "1", VENDOR, "1883").returncode != 0
    assert not [h for h in lab.hits(after=again) if h["addr"] == VENDOR]


def _dot_burst(lab, count: int) -> None:
    """`count` DNS-over-TLS datagrams from a controller: each one dropped as `dot`."""
    burst = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
             f"for i in range({count}):\n    s.sendto(b'x', ('198.51.100.53', 853))\n")
    assert lab.run("ctl", sys.executable, "-c", burst).returncode == 0


def test_drops_made_with_no_daemon_are_counted_and_a_kill_is_recorded(lab):
    """Stopped cleanly, then killed: each time the table's drops while no daemon ran are
    carried into the counters and recorded; only the kill is an unclean stop."""
    assert lab.reload(mode="vendor-block")
    try:
        for how, count in ((signal.SIGTERM, 200), (signal.SIGKILL, 300)):
            first = lab.last_n()
            os.kill(lab.state.pids["appliance"], how)
            lab.appliance.wait(timeout=30)
            _dot_burst(lab, count)
            lab.start_appliance()
            new = lab.events(after=first)
            unclean = [e for e in new if e["type"] == "appliance.unclean_stop"]
            down = [e for e in new if e["type"] == "firewall.counted_while_down"]
            assert len(down) == 1 and down[0]["details"]["by_reason"] == {"dot": count}, down
            assert lab.metric("gcsguard_firewall_packets_total", reason="dot") >= count
            if how == signal.SIGTERM:
                assert not unclean, unclean
            else:
                (record,) = unclean
                assert record["details"]["last_n"] == record["n"] - 1, record
                checkpoint = record["details"]["last_checkpoint"]
                assert checkpoint["reason"] != "shutdown" or checkpoint["n"] < record["n"] - 1
    finally:
        if lab.appliance.poll() is not None:
            lab.start_appliance()


def test_a_ruleset_nft_refuses_keeps_the_old_rules(lab):
    assert lab.reload(mode="isolate", allow=["www.allowed.example tcp/80,443"])
    before = lab.run("appl", "nft", "list", "table", "inet", "gcsguard").stdout
    # overlapping port ranges in one set: valid config, refused by nft
    assert not lab.reload(mode="vendor-block", allow=["198.51.100.0/24 tcp/80,80-90"])
    after = lab.run("appl", "nft", "list", "table", "inet", "gcsguard").stdout
    assert before.split("counter")[0] == after.split("counter")[0]        # same sets and rules
    assert curl(lab, f"http://{HARDCODED}/") in CUT                      # still isolate
    assert curl(lab, "https://www.allowed.example/", "--cacert", lab.pki["ca"]) == "200"
    rejected = [e for e in lab.events() if e["type"] == "firewall.rejected"]
    assert rejected and "File exists" in rejected[-1]["details"]["error"]
    assert lab.metric("gcsguard_firewall_mode", mode="isolate") == 1     # the DNS side kept it too
    lab.settings["allow"] = ["www.allowed.example tcp/80,443"]
    assert lab.reload(mode="isolate")


def test_a_scan_from_the_internet_finds_nothing_but_the_canary(lab):
    assert lab.reload(mode="vendor-block")
    canary = subprocess.Popen(ns_exec(lab.ns.appl, sys.executable, "-m", "http.server", "--bind",
                                      WAN_V4, "8443"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert scan(lab, "inet", WAN_V4) == []                           # listening, yet closed
        rule = lab.run("appl", "nft", "insert", "rule", "inet", "gcsguard", "input", "iifname",
                       '"wan0"', "tcp", "dport", "8443", "accept")
        assert rule.returncode == 0, rule.stderr
        assert scan(lab, "inet", WAN_V4) == [8443]                       # the scan does see an opening
    finally:
        canary.terminate()
        canary.wait(timeout=10)
        assert lab.sighup()                                             # the rendered ruleset again
    # from the LAN, the appliance answers DNS only (metrics are on the management side)
    assert scan(lab, "ctl", LAN_V4) == [53]
    assert lab.run("ctl", "curl", "-sf", "-m", "2", f"http://{LAN_V4}:9253/metrics").returncode != 0
    assert "gcsguard_build_info" in lab.metrics_text()                  # positive: from management
    dns = lab.run("inet", "dig", "+time=1", "+tries=1", f"@{WAN_V4}", "www.allowed.example")
    assert "timed out" in dns.stdout                                    # no UDP answer on the WAN


def test_rogue_router_advertisement_is_logged(lab):
    after = lab.last_n()
    code = ("from scapy.all import IPv6, ICMPv6ND_RA, send;"
            "send(IPv6(dst='ff02::1')/ICMPv6ND_RA(), iface='eth0', verbose=0)")
    assert lab.run("ctl", sys.executable, "-c", code).returncode == 0
    deadline = time.time() + 5
    while time.time() < deadline:
        if [e for e in lab.events(after) if e["type"] == "lan.rogue_ra"]:
            break
        time.sleep(0.1)
    ra = [e for e in lab.events(after) if e["type"] == "lan.rogue_ra"]
    assert ra and ra[0]["details"]["in"] == "lan0" and ra[0]["details"]["mac"]


CUT = ("000", "403")        # no connection, or the gate's refusal (plain HTTP)


def curl(lab, *args) -> str:
    return lab.run("ctl", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "1.5", *args).stdout


def table_in_force(lab) -> bool:
    return lab.run("appl", "nft", "list", "table", "inet", "gcsguard").returncode == 0


def scan(lab, role: str, host: str) -> list[int]:
    out = lab.run(role, sys.executable, os.path.join(os.path.dirname(os.path.dirname(__file__)),
                                                     "scan.py"), host, timeout=60)
    assert out.returncode == 0, out.stderr
    return [int(p) for p in out.stdout.split()]

