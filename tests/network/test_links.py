"""Interfaces: checked at start (a clear error), watched while running (events and a gauge)."""
import subprocess
import sys
import time

from appliance.config import load_config
from appliance.lab.topology import LAN_V4, LAN_V6
from appliance.network.links import roles, validate
from tests.conftest import config_file, in_netns


def test_validate_names_the_missing_interface_and_foreign_address(tmp_path):
    path = config_file(tmp_path, firewall="enabled = true", dns='listen = ["10.70.0.1:53"]',
                       extra='[network]\nlan_interfaces = ["lan0", "wlan0"]\nwan_interface = "wan0"\n')
    config = load_config(path)
    assert roles(config) == {"lan0": "lan", "wlan0": "lan", "wan0": "wan"}
    problems = validate(config, {"lo": "UNKNOWN", "lan0": "UP", "wan0": "DOWN"}, {"127.0.0.1"})
    assert problems == [
        f"{path}: [network] lan_interfaces: 'wlan0' does not exist (interfaces here: lan0, lo, wan0)",
        f"{path}: [dns] listen: 10.70.0.1 is not an address of this machine"]
    assert validate(config, {"lan0": "UP", "wlan0": "UP", "wan0": "UP"},
                    {"10.70.0.1", "127.0.0.1"}) == []


def test_the_daemon_refuses_to_start_without_its_interfaces(tmp_path, scratch_netns):
    path = config_file(tmp_path, firewall="enabled = true",
                       extra='[network]\nlan_interfaces = ["lan0"]\nwan_interface = "wan0"\n')
    in_netns(scratch_netns, "ip", "link", "set", "lo", "up")
    result = in_netns(scratch_netns, sys.executable, "-m", "appliance", "run", "-c", path, check=False)
    assert result.returncode == 2
    assert "[network] lan_interfaces: 'lan0' does not exist" in result.stderr
    assert in_netns(scratch_netns, "nft", "list", "ruleset").stdout == ""   # nothing loaded


def test_link_changes_become_events_and_a_gauge(lab):
    assert lab.metric("gcsguard_link_up", interface="lan0", role="lan") == 1
    after = lab.last_n()
    subprocess.run(["ip", "-n", lab.ns.ctl, "link", "set", "eth0", "down"], check=True)
    try:
        assert wait_for(lambda: lab.metric("gcsguard_link_up", interface="lan0", role="lan") == 0)
    finally:                 # link down took the controller's routes with it: put them back
        subprocess.run(["ip", "-n", lab.ns.ctl, "link", "set", "eth0", "up"], check=True)
        subprocess.run(["ip", "-n", lab.ns.ctl, "route", "replace", "default", "via", LAN_V4], check=True)
        subprocess.run(["ip", "-n", lab.ns.ctl, "-6", "route", "replace", "default", "via", LAN_V6],
                       check=True)
    assert wait_for(lambda: lab.metric("gcsguard_link_up", interface="lan0", role="lan") == 1)
    types = [(e["type"], e["details"].get("interface")) for e in lab.events(after)]
    assert ("link.down", "lan0") in types and ("link.up", "lan0") in types
    subprocess.run(["ip", "-n", lab.ns.appl, "addr", "add", "10.70.1.1/24", "dev", "lan0"], check=True)
    subprocess.run(["ip", "-n", lab.ns.appl, "addr", "del", "10.70.1.1/24", "dev", "lan0"], check=True)
    assert wait_for(lambda: {"address.added", "address.removed"} <= {
        e["type"] for e in lab.events(after) if e["details"].get("address") == "10.70.1.1"})
    # with the link and routes back, the allowed site works again (positive control)
    assert wait_for(lambda: lab.run("ctl", "curl", "-sf", "-m", "2", "--cacert", lab.pki["ca"],
                                    "https://www.allowed.example/").returncode == 0)


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False
