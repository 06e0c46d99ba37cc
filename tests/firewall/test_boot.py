"""The boot table and `firewall open`, in a namespace of our own."""
import sys
import textwrap

from tests.conftest import in_netns
from tests.firewall.test_nft import GOOD


def test_boot_table_drops_forwarding_and_never_weakens_a_loaded_one(scratch_netns):
    in_netns(scratch_netns, sys.executable, "-c", "from appliance.firewall.boot import load_boot; load_boot()")
    listed = in_netns(scratch_netns, "nft", "list", "table", "inet", "gcsguard").stdout
    assert "hook forward priority filter; policy drop;" in listed
    in_netns(scratch_netns, "nft", "-f", "-", input=GOOD)              # the daemon's full table
    in_netns(scratch_netns, sys.executable, "-c", "from appliance.firewall.boot import load_boot; load_boot()")
    listed = in_netns(scratch_netns, "nft", "list", "table", "inet", "gcsguard").stdout
    assert "203.0.113.10" in listed and "ip daddr @vendor_v4 drop" in listed   # still whole


def test_boot_needs_no_config_and_forwarding_follows_open(scratch_netns, tmp_path):
    """`firewall boot` reads no config: the fixed table, whatever the config says.
    `firewall open` removes it and switches forwarding on (the one explicit way to open)."""
    booted = in_netns(scratch_netns, sys.executable, "-m", "appliance", "firewall", "boot")
    assert booted.returncode == 0, booted.stderr
    assert "policy drop" in in_netns(scratch_netns, "nft", "list", "table", "inet", "gcsguard").stdout
    read = lambda: in_netns(scratch_netns, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip()
    assert read() == "0"
    code = "from appliance.firewall.boot import open_firewall, set_forwarding; " \
           "print(open_firewall(), set_forwarding(True))"
    assert in_netns(scratch_netns, sys.executable, "-c", code).stdout.split() == ["True", "on"]
    assert read() == "1"
    assert "gcsguard" not in in_netns(scratch_netns, "nft", "list", "tables").stdout


def test_open_removes_only_our_table(scratch_netns):
    in_netns(scratch_netns, "nft", "add table inet site; add chain inet site c", check=True)
    in_netns(scratch_netns, "nft", "-f", "-", input=GOOD)
    code = textwrap.dedent("""
        from appliance.firewall.boot import open_firewall
        print(open_firewall(), open_firewall())
    """)
    assert in_netns(scratch_netns, sys.executable, "-c", code).stdout.split() == ["True", "False"]
    tables = in_netns(scratch_netns, "nft", "list", "tables").stdout
    assert "inet site" in tables and "gcsguard" not in tables
