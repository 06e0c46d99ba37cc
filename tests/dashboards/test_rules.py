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


def test_the_example_scrape_config_is_valid():
    checked = promtool("check", "config", "scrape.yml", cwd=os.path.join(HERE, "prometheus"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_example_alertmanager_route_is_valid():
    checked = subprocess.run(["amtool", "check-config", os.path.join(HERE, "alertmanager",
                                                                      "alertmanager.yml")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and "SUCCESS" in checked.stdout, checked.stdout + checked.stderr
