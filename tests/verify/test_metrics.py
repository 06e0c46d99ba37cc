"""The last run's results as metrics, from the results file, promtool-clean."""
import json
import subprocess

from prometheus_client import CollectorRegistry, generate_latest

from appliance.verify.metrics import VerifyCollector


def test_results_become_bounded_gauges(tmp_path):
    path = tmp_path / "verify.json"
    registry = CollectorRegistry()
    registry.register(VerifyCollector(str(path)))
    assert b"gcsguard_isolation" not in generate_latest(registry)      # never verified: absent
    path.write_text(json.dumps({"finished": 1795000000.5, "passed": False, "last_pass": 1794990000.0,
                                "checks": [{"check": "mqtt", "status": "fail"},
                                           {"check": "dot", "status": "pass"},
                                           {"check": "cname-cloak", "status": "skip"}]}))
    value = registry.get_sample_value
    assert value("gcsguard_isolation_check_passed", {"check": "mqtt"}) == 0
    assert value("gcsguard_isolation_check_passed", {"check": "dot"}) == 1
    assert value("gcsguard_isolation_check_passed", {"check": "cname-cloak"}) is None
    assert value("gcsguard_isolation_last_run_passed") == 0
    assert value("gcsguard_isolation_last_pass_timestamp_seconds") == 1794990000.0
    text = generate_latest(registry).decode()
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    path.write_text("{broken")
    assert b"gcsguard_isolation" not in generate_latest(registry)      # unreadable: absent, alerts
