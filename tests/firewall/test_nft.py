"""libnftables through ctypes, run inside a namespace of our own (never the host's)."""
import json
import sys
import textwrap

from tests.conftest import in_netns

GOOD = """table inet gcsguard
delete table inet gcsguard
table inet gcsguard {
  set vendor_v4 {
    type ipv4_addr
    elements = { 203.0.113.10 }
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ip daddr @vendor_v4 drop
  }
}
"""
# Valid syntax, refused by the kernel: a rule uses a set that does not exist.
REFUSED = GOOD.replace("ip daddr @vendor_v4 drop", "ip daddr @absent_set drop").replace(
    "203.0.113.10", "203.0.113.99")


def run_py(ns, code, **kw):
    return in_netns(ns, sys.executable, "-c", textwrap.dedent(code), **kw)


def test_run_check_and_a_refused_transaction_changes_nothing(scratch_netns):
    out = run_py(scratch_netns, f"""
        import json
        from appliance.firewall.nft import Nft, NftError
        nft, js = Nft(), Nft(json_output=True)
        nft.check({GOOD!r})                       # dry run: nothing committed
        before = nft.run("list tables")
        nft.run({GOOD!r})
        try:
            nft.run({REFUSED!r})
            error = None
        except NftError as e:
            error = str(e)
        elements = json.loads(js.run("list set inet gcsguard vendor_v4"))
        print(json.dumps({{"before": before, "error": error, "set": elements}}))
    """)
    result = json.loads(out.stdout)
    assert result["before"] == ""                                  # the check loaded nothing
    assert "No such file or directory" in result["error"] and "@absent_set" in result["error"]
    members = result["set"]["nftables"][1]["set"]["elem"]
    assert members == ["203.0.113.10"]                            # the old table, untouched


def test_single_line_commands_and_syntax_errors_name_the_line(scratch_netns):
    out = run_py(scratch_netns, f"""
        from appliance.firewall.nft import Nft, NftError
        nft = Nft()
        nft.run({GOOD!r})
        nft.run("add element inet gcsguard vendor_v4 {{ 203.0.113.11 }}")
        print(nft.run("list set inet gcsguard vendor_v4"))
        try:
            nft.run("table inet x {{\\n  chain c {{\\n    bogus statement\\n  }}\\n}}\\n")
        except NftError as e:
            print("ERROR", e)
    """)
    assert "203.0.113.11" in out.stdout
    assert "ERROR" in out.stdout and ":3:" in out.stdout               # file:line of the fault
