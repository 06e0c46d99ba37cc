"""One table of reasons: the ruleset's log prefixes and what the packet reader makes of them."""
import re

from appliance.firewall.render import DROP_REASONS, LOG_REASONS, PREFIX, render
from appliance.policy import load_policy
from appliance.policy.reasons import BY_PREFIX, JUDGE, RULESET, address_kind
from tests.conftest import config_file


def test_every_prefix_the_ruleset_logs_is_known_to_the_packet_reader(tmp_path):
    for mode in ("isolate", "vendor-block", "audit"):
        policy = load_policy(config_file(tmp_path, firewall=f'mode = "{mode}"\nquic = false'))
        logged = set(re.findall(rf'log prefix "{PREFIX}([a-z0-9-]+) "', render(policy)))
        assert logged and logged <= set(BY_PREFIX), logged - set(BY_PREFIX)
        assert logged == {r.name for r in RULESET}               # and every reason has its chain


def test_drop_and_log_reasons_come_from_the_table():
    assert set(DROP_REASONS) | set(LOG_REASONS) == set(BY_PREFIX)
    assert all(BY_PREFIX[r].drops for r in DROP_REASONS)
    assert BY_PREFIX["audit-vendor"].event == "egress.audit" and not BY_PREFIX["audit-vendor"].drops


def test_categories():
    assert address_kind("doh") == "bypass" and address_kind("vendor") == "vendor"
    assert "not-allowed" in JUDGE and "vendor-address" in JUDGE
