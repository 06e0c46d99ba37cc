"""The Prometheus rules and example configs, checked by Prometheus' own tools."""
import os
import subprocess

HERE = os.path.join(os.path.dirname(__file__), "..", "..", "dashboards")


def promtool(*args, cwd):
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def test_rules_are_valid_and_their_unit_tests_pass():
    rules = os.path.join(HERE, "prometheus")
    checked = promtool("check", "rules", "gcsguard-rules.yml", cwd=rules)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "gcsguard-rules.test.yml", cwd=rules)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test_that_fires_it_and_keeps_the_station():
    import yaml
    rules = yaml.safe_load(open(os.path.join(HERE, "prometheus", "gcsguard-rules.yml")))
    tests = yaml.safe_load(open(os.path.join(HERE, "prometheus", "gcsguard-rules.test.yml")))
    names = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    fired = [(a["alertname"], e) for t in tests["tests"] for a in t.get("alert_rule_test", [])
             for e in a.get("exp_alerts") or []]
    assert names == {name for name, _ in fired}
    absent = {"GcsguardDown"}          # absent(up) has no labels to keep; its `up == 0` arm does
    assert all("station" in e["exp_labels"] for name, e in fired if name not in absent)
    assert all("station {{ $labels.station }}" in r["annotations"]["summary"]
               for g in rules["groups"] for r in g["rules"] if "alert" in r)


def test_the_example_scrape_and_federation_configs_are_valid():
    for config in ("scrape.yml", "federation.yml"):
        checked = promtool("check", "config", config, cwd=os.path.join(HERE, "prometheus"))
        assert checked.returncode == 0, config + checked.stdout + checked.stderr


def test_the_example_alertmanager_route_is_valid():
    checked = subprocess.run(["amtool", "check-config", os.path.join(HERE, "alertmanager",
                                                                      "alertmanager.yml")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and "SUCCESS" in checked.stdout, checked.stdout + checked.stderr
