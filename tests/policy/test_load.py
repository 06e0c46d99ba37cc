"""The policy is loaded once, whole: every entry's meaning checked, with file and key."""
import pytest

from appliance.config import ConfigError
from appliance.policy import load_policy
from tests.conftest import config_file


def test_the_parts_are_parsed_once(tmp_path):
    (tmp_path / "rules.toml").write_text('[[rule]]\nname = "x"\nmatch = {type = "a"}\n')
    policy = load_policy(config_file(tmp_path, firewall='mode = "isolate"\n'
                                     'allow = ["www.allowed.example tcp/443"]', extra=(
        '[devices]\ninventory = ["02:00:00:00:00:23 ctl-03 controller DJI"]\n'
        '[alerts]\nrules_file = "rules.toml"\n')))
    assert [a.name for a in policy.allows] == ["www.allowed.example"]
    assert policy.inventory["02:00:00:00:00:23"].name == "ctl-03"
    assert [r.name for r in policy.alert_rules] == ["x"]
    assert policy.mode == "isolate"


def test_every_bad_entry_is_named_at_once(tmp_path):
    path = config_file(tmp_path, firewall='allow = ["bad..name"]',
                       extra='[devices]\ninventory = ["zz ctl"]\n')
    with pytest.raises(ConfigError) as e:
        load_policy(path)
    assert [line.split(": ")[1] for line in e.value.errors] == ["[firewall] allow", "[devices] inventory"]


def test_without_the_ruleset_only_the_lists_are_enforced(tmp_path):
    """A resolver-only run (`[firewall] enabled = false`, tests) has no allowlist to enforce."""
    assert load_policy(config_file(tmp_path)).mode == "vendor-block"
