"""Fail-closed boot, for real with nftables in the lab: after the boot table and before the
daemon, a controller reaches nothing; once the daemon runs, allowed traffic flows."""
import os
import signal
import subprocess
import sys
import time

from appliance.lab.internet import ALLOWED, VENDOR
from appliance.firewall.boot import BOOT_FILE as BOOT_NFT
from appliance.lab.topology import ns_exec


def curl(lab) -> str:
    return lab.run("ctl", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "2",
                   "--cacert", lab.pki["ca"], "https://www.allowed.example/").stdout


def test_boot_table_then_daemon(lab):
    assert lab.reload(mode="vendor-block")
    assert curl(lab) == "200"                                       # before: the full ruleset
    os.kill(lab.state.pids["appliance"], signal.SIGTERM)
    lab.appliance.wait(timeout=30)
    # a reboot: no table at all, then the boot unit's command
    assert lab.run("appl", "nft", "delete", "table", "inet", "gcsguard").returncode == 0
    boot = lab.run("appl", "nft", "-f", BOOT_NFT)                  # what the boot unit runs
    assert boot.returncode == 0, boot.stderr
    start = time.time()
    try:
        assert curl(lab) == "000"                                   # forwarded nowhere
        assert lab.run("ctl", "curl", "-s", "-m", "2", "http://198.51.100.250/").returncode != 0
        assert not [h for h in lab.hits(after=start) if h["addr"] in (ALLOWED, "198.51.100.250")]
    finally:
        lab.start_appliance()                                       # the daemon takes over
    assert curl(lab) == "200"


def test_an_upgrade_keeps_the_rules_in_force(lab, tmp_path):
    """An upgrade is `gcsguard install` then a restart of the daemon: during both, a steady
    stream of vendor attempts gets nothing through; afterwards allowed traffic flows."""
    assert lab.reload(mode="vendor-block")
    start = time.time()
    stream = subprocess.Popen(ns_exec(lab.ns.ctl, "bash", "-c", (
        f"for i in $(seq 60); do timeout 0.3 nc -z {VENDOR} 1883; sleep 0.05; done")))
    installed = lab.run("appl", sys.executable, "-m", "appliance", "install", "--root", str(tmp_path),
                        "--no-venv")
    assert installed.returncode in (0, 1), installed.stderr          # 1: the scratch config fails check
    lab.restart_appliance()                                          # the new version takes over
    stream.wait(timeout=90)
    assert not [h for h in lab.hits(after=start) if h["addr"] == VENDOR]
    assert curl(lab) == "200"
