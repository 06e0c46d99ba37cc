"""The firewall in the running appliance (in the lab): learned sets, provenance, persistence."""
import json
import os
import signal
import subprocess
import sys
import time

from appliance.lab.internet import VENDOR
from appliance.lab.topology import LAN_V4
from tests.network.test_links import wait_for


def nft_set(lab, name: str) -> str:
    return lab.run("appl", "nft", "list", "set", "inet", "gcsguard", name).stdout


def gcsguard(lab, *args):
    return lab.run("appl", sys.executable, "-m", "appliance", *args, "-c", lab.config_path)


def applied(lab) -> int:
    return sum(e["type"] == "firewall.applied" for e in lab.events())


def test_a_refused_name_is_never_resolved_and_an_answers_vendor_address_is_learned(lab):
    """A client's refused lookup leaves nothing (not even the appliance's own lookup); the
    vendor address in an allowed query's CNAME-cloaked answer goes into the set element
    by element, under the listed name that matched."""
    assert lab.reload(mode="vendor-block")
    loads, start = applied(lab), time.time()
    assert "203.0.113.14" not in nft_set(lab, "learned_vendor_v4")
    # ingest.dji.com is covered by the list entry dji.com: refused, and never asked upstream
    assert "NXDOMAIN" in lab.run("ctl", "dig", f"@{LAN_V4}", "ingest.dji.com").stdout
    # relay.allowed.example is on no list: asked upstream, its answer's CNAME is a vendor's
    assert "NXDOMAIN" in lab.run("ctl", "dig", f"@{LAN_V4}", "relay.allowed.example").stdout
    assert wait_for(lambda: "203.0.113.14" in nft_set(lab, "learned_vendor_v4"))
    assert applied(lab) == loads                                  # no reload: one element added
    time.sleep(1.0)                                               # a learner would have asked by now
    asked = lab.upstream_queries(after=start)
    assert "relay.allowed.example" in asked                        # positive control
    assert "ingest.dji.com" not in asked
    assert wait_for(lambda: gcsguard(lab, "lists", "ip", "203.0.113.14").returncode == 0)  # saved
    shown = gcsguard(lab, "lists", "ip", "203.0.113.14")
    assert "learned 203.0.113.14 as vendor:" in shown.stdout
    assert "ingest.dji.com" in shown.stdout
    assert gcsguard(lab, "lists", "ip", "192.0.2.99").returncode == 1


def test_an_allowed_name_is_in_the_set_before_its_answer_reaches_the_client(lab):
    assert lab.reload(mode="isolate", allow=["allowed.example tcp/80,443"])
    try:
        dig = lab.run("ctl", "dig", "+short", f"@{LAN_V4}", "short.allowed.example")
        assert dig.stdout.strip() == "198.51.100.81"
        members = nft_set(lab, "learned_allow_svc_v4")            # read right after the answer
        assert "198.51.100.81 . tcp . 80" in members and "198.51.100.81 . tcp . 443" in members
        # a shared address: an allowed name resolving to a vendor address stays blocked, and says so
        assert "203.0.113.10" in lab.run("ctl", "dig", "+short", f"@{LAN_V4}", "cdn.allowed.example").stdout
        assert wait_for(lambda: [e for e in lab.events() if e["type"] == "firewall.shared_address"])
        shared = [e for e in lab.events() if e["type"] == "firewall.shared_address"]
        assert shared[-1]["details"]["address"] == VENDOR
        assert shared[-1]["details"]["policy"] == "block" and shared[-1]["action"] == "block"
        code = lab.run("ctl", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "1.5",
                       "http://cdn.allowed.example/").stdout
        assert code in ("000", "403")                          # dropped, or refused by the gate
        assert lab.run("ctl", "curl", "-sf", "-m", "2", "--cacert", lab.pki["ca"],
                       "https://www.allowed.example/").returncode == 0      # positive control
    finally:
        assert lab.reload(allow=["www.allowed.example tcp/80,443"])


def test_sets_and_rules_outlive_the_daemon_and_come_back_from_the_state_file(lab):
    before = nft_set(lab, "learned_vendor_v4")
    assert VENDOR in before
    os.kill(lab.state.pids["appliance"], signal.SIGTERM)
    lab.appliance.wait(timeout=20)
    assert nft_set(lab, "learned_vendor_v4") == before            # no kernel timeout emptied it
    state = json.load(open(os.path.join(lab.directory, "state", "learned-addresses.json")))
    assert VENDOR in state["addresses"]["vendor"]
    shown = gcsguard(lab, "firewall", "show")                      # what a restart will load
    assert shown.returncode == 0 and VENDOR in shown.stdout.split("set learned_vendor_v4")[1][:400]
    assert gcsguard(lab, "firewall", "check").returncode == 0
    stopped = [e for e in lab.events() if e["type"] == "appliance.stopped"]
    assert stopped[-1]["reason"] == "stop"
    lab.start_appliance()
    assert VENDOR in nft_set(lab, "learned_vendor_v4")


def test_firewall_open_with_the_daemon_running_is_recorded_by_it_and_a_reload_restores(lab):
    opened = gcsguard(lab, "firewall", "open", "--reason", "maintenance window")
    assert opened.returncode == 0 and "recorded by the daemon" in opened.stdout
    assert lab.run("appl", "nft", "list", "table", "inet", "gcsguard").returncode != 0
    assert wait_for(lambda: [e for e in lab.events() if e["type"] == "firewall.opened"
                             and e["details"]["why"] == "maintenance window"])
    assert lab.sighup()
    assert lab.run("appl", "nft", "list", "table", "inet", "gcsguard").returncode == 0


def test_metrics_count_drops_per_reason_and_pass_promtool(lab):
    assert lab.reload(mode="vendor-block")
    before = lab.metric("gcsguard_firewall_packets_total", reason="dot") or 0
    lab.run("ctl", "dig", "+tls", "+time=1", "+tries=1", "@198.51.100.53", "www.allowed.example")
    assert lab.metric("gcsguard_firewall_packets_total", reason="dot") > before
    assert lab.metric("gcsguard_firewall_mode", mode="vendor-block") == 1
    assert lab.metric("gcsguard_firewall_learned_addresses", kind="bypass") >= 2
    assert lab.metric("gcsguard_nflog_overruns_total") == 0
    check = subprocess.run(["promtool", "check", "metrics"], input=lab.metrics_text(),
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
