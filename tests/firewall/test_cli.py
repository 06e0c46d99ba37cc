"""`gcsguard firewall show | check | boot` on a config, in a namespace of our own."""
import subprocess
import sys

from tests.conftest import config_file, in_netns

NETWORK = '[network]\nlan_interfaces = ["lan0"]\nwan_interface = "wan0"\n'


def gcsguard(*args):
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True)


def test_show_prints_the_rendered_ruleset(tmp_path):
    path = config_file(tmp_path, firewall='mode = "vendor-block"', extra=NETWORK)
    shown = gcsguard("firewall", "show", "-c", path)
    assert shown.returncode == 0
    assert shown.stdout.startswith("table inet gcsguard\ndelete table inet gcsguard\n")
    assert "chain lan_egress" in shown.stdout


def test_check_asks_nft_and_names_what_it_refused(tmp_path, scratch_netns):
    good = config_file(tmp_path, firewall='mode = "isolate"\nallow = ["198.51.100.0/24 tcp/443"]',
                       extra=NETWORK)
    ok = in_netns(scratch_netns, sys.executable, "-m", "appliance", "firewall", "check", "-c", good)
    assert "OK: the ruleset" in ok.stdout and "(isolate)" in ok.stdout
    bad = config_file(tmp_path, firewall='allow = ["198.51.100.0/24 tcp/80,80-90"]', extra=NETWORK)
    refused = in_netns(scratch_netns, sys.executable, "-m", "appliance", "firewall", "check", "-c", bad,
                       check=False)
    assert refused.returncode == 1
    assert "FAILED: the rendered ruleset" in refused.stderr and "80-90" in refused.stderr
    assert in_netns(scratch_netns, "nft", "list", "ruleset").stdout == ""      # a check loads nothing


def test_boot_command_loads_the_drop_forward_table(scratch_netns):
    booted = in_netns(scratch_netns, sys.executable, "-m", "appliance", "firewall", "boot")
    assert "nothing is forwarded" in booted.stdout
    assert "policy drop" in in_netns(scratch_netns, "nft", "list", "chain", "inet", "gcsguard",
                                     "forward").stdout
