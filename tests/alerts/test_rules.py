import pytest

from appliance.alerts.rules import AlertEngine, RulesError, load_rules
from appliance.events.clock import Clock
from appliance.events.event import Event

RULES = '''
[[rule]]
name = "vendor-egress"
match = {type = ["egress.blocked", "tls.decision"], action = "block", vendor = "D*"}
group_by = ["device_name"]
threshold = 2
window = 60
cooldown = 120
severity = "critical"
summary = "{device_name} tried {vendor} ({reason})"
'''


def event(device="ctl-03", type="egress.blocked", vendor="DJI", action="block"):
    return Event(type, Clock().stamp(), action=action, reason="vendor-learned", vendor=vendor,
                 device_name=device)


def test_threshold_window_group_cooldown_and_resolution(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(RULES)
    engine = AlertEngine(load_rules(str(path)))
    assert engine.observe(event(), 0) == []                          # 1 of 2
    assert engine.observe(event(vendor="Autel"), 1) == []            # no match (vendor glob)
    assert engine.observe(event(action="allow"), 2) == []            # no match (action)
    fired, = engine.observe(event(type="tls.decision"), 10)         # 2 in 60 s: fires
    assert (fired.status, fired.group, fired.count, fired.rule.severity) == (
        "firing", {"device_name": "ctl-03"}, 2, "critical")
    assert fired.summary == "ctl-03 tried DJI (vendor-learned)"
    assert engine.observe(event(), 20) == []                         # cooldown: deduplicated
    assert engine.observe(event("tab-1"), 21) == []                  # another group: its own count
    assert engine.tick(100) == []                                    # window empty, cooldown not over
    resolved, = engine.tick(131)
    assert (resolved.status, resolved.ends_at, resolved.starts_at) == ("resolved", 131, 10)
    assert engine.tick(200) == []                                    # resolved once


def test_bad_rules_are_named_with_file_rule_and_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[rule]]\nname = "x"\nmatch = {colour = "red"}\n'
                    '[[rule]]\nname = "y"\nmatch = {type = "a"}\nthreshold = 0\n'
                    '[[rule]]\nname = "z"\nmatch = {type = "a"}\nwindows = 5\n')
    with pytest.raises(RulesError) as e:
        load_rules(str(path))
    text = str(e.value)
    assert f"{path}: rule 1 (x): match: 'colour' is not an event field" in text
    assert f"{path}: rule 2 (y): threshold >= 1" in text
    assert f"{path}: rule 3 (z): unknown keys: windows" in text


def test_a_config_with_bad_rules_is_rejected(tmp_path):
    from appliance.config import ConfigError
    from appliance.policy import load_policy
    from tests.conftest import config_file
    (tmp_path / "rules.toml").write_text("[[rule]]\nname = 'x'\n")
    with pytest.raises(ConfigError, match=r"\[alerts\] rules_file: .*rule 1 \(x\): 'match'"):
        load_policy(config_file(tmp_path, extra='[alerts]\nrules_file = "rules.toml"\n'))
