"""The shipped alert rules, end to end with the real programs: Prometheus scrapes the lab's
appliance and evaluates gcsguard-rules.yml every second, Alertmanager (1 s group_wait)
posts to a webhook on the management host. Quiet without vendor attempts; the vendor
alert arrives within a bounded time once a controller tries."""
import os
import subprocess
import sys
import textwrap
import time

import pytest

from appliance.lab.internet import VENDOR
from appliance.lab.topology import METRICS_PORT, MGMT_APPLIANCE, ns_exec
from tests.helpers import WEBHOOK_RECEIVER, webhook_posts
from tests.network.test_links import wait_for

RULES = os.path.join(os.path.dirname(__file__), "..", "..", "dashboards", "prometheus", "gcsguard-rules.yml")


@pytest.fixture
def alerting(lab, tmp_path):
    (tmp_path / "prometheus.yml").write_text(textwrap.dedent(f"""\
        global: {{scrape_interval: 1s, evaluation_interval: 1s}}
        rule_files: ["{os.path.abspath(RULES)}"]
        alerting:
          alertmanagers: [{{static_configs: [{{targets: ["127.0.0.1:9093"]}}]}}]
        scrape_configs:
          - job_name: gcsguard
            static_configs: [{{targets: ["{MGMT_APPLIANCE}:{METRICS_PORT}"], labels: {{station: lab}}}}]
        """))
    (tmp_path / "alertmanager.yml").write_text(textwrap.dedent("""\
        route: {receiver: hook, group_by: [alertname, station], group_wait: 1s, group_interval: 1s,
                repeat_interval: 1h}
        receivers:
          - name: hook
            webhook_configs: [{url: "http://127.0.0.1:9095/", send_resolved: true}]
        """))
    received = tmp_path / "received.jsonl"
    commands = [
        [sys.executable, "-c", WEBHOOK_RECEIVER, str(received), "127.0.0.1"],
        ["prometheus-alertmanager", f"--config.file={tmp_path / 'alertmanager.yml'}",
         f"--storage.path={tmp_path / 'am'}", "--web.listen-address=127.0.0.1:9093",
         "--cluster.listen-address="],
        ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", "--web.listen-address=127.0.0.1:9090"]]
    processes = [subprocess.Popen(ns_exec(lab.ns.mgmt, *c), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for c in commands]

    def alerts() -> list[dict]:
        return [a for post in webhook_posts(received) for a in post["alerts"]]
    try:
        assert wait_for(lambda: lab.run("mgmt", "curl", "-sf", "-m", "2",
                                        "http://127.0.0.1:9090/api/v1/query?query=up").returncode == 0
                        and lab.run("mgmt", "curl", "-sf", "-m", "2",
                                    "http://127.0.0.1:9093/-/ready").returncode == 0, timeout=30)
        yield alerts
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            p.wait(timeout=20)


def test_the_vendor_alert_fires_only_when_a_vendor_is_tried(lab, alerting):
    assert lab.reload(mode="vendor-block")
    assert lab.run("ctl", "curl", "-sf", "-m", "2", "--cacert", lab.pki["ca"],
                   "https://www.allowed.example/").returncode == 0        # allowed traffic only
    time.sleep(8)                                  # several evaluations, group_wait long past
    assert not [a for a in alerting() if a["labels"]["alertname"] == "GcsguardVendorEgressAttempt"]
    start = time.monotonic()
    lab.run("ctl", "curl", "-s", "-m", "1", f"http://{VENDOR}:8080/")        # a vendor attempt
    assert wait_for(lambda: [a for a in alerting() if a["labels"]["alertname"]
                             == "GcsguardVendorEgressAttempt" and a["status"] == "firing"], timeout=30)
    fired = [a for a in alerting() if a["labels"]["alertname"] == "GcsguardVendorEgressAttempt"][0]
    assert fired["labels"]["reason"] == "vendor-learned" and fired["labels"]["severity"] == "warning"
    assert fired["labels"]["station"] == "lab" and "at station lab (" in fired["annotations"]["summary"]
    assert time.monotonic() - start < 30
