"""docs/metrics.md and the appliance's endpoint list the same metric families, and the
endpoint is clean under promtool (scraped from the lab's appliance, all parts on)."""
import os
import re
import subprocess

from prometheus_client.parser import text_string_to_metric_families

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "metrics.md")


def test_every_exposed_family_is_documented_and_nothing_else(lab):
    if "gcsguard_isolation_last_pass_timestamp_seconds" not in lab.metrics_text():
        assert lab.verify()[0] == 0           # the verification gauges exist once a run passed
    text = lab.metrics_text()
    exposed = {f.name + ("_total" if f.type == "counter" else "")
               for f in text_string_to_metric_families(text)}
    documented = documented_families() - documented_families("gcsguard_ship_")    # [ship] only: the fleet test
    assert exposed - documented == set(), "undocumented"
    assert documented - exposed == set(), "documented but not exposed"
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def documented_families(prefix: str = "gcsguard_") -> set[str]:
    return set(re.findall(rf"^\| `({prefix}[a-z_]+)`", open(DOC).read(), re.M))
