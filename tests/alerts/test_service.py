"""The appliance's own alerts in the lab: a vendor attempt reaches a real Alertmanager and a
webhook on the management network, and both see it resolve."""
import json
import subprocess

import pytest

from appliance.lab.internet import VENDOR
from appliance.lab.topology import MGMT_HOST, ns_exec
from tests.helpers import WEBHOOK_RECEIVER, webhook_posts
from tests.network.test_links import wait_for


@pytest.fixture
def receivers(lab, tmp_path):
    (tmp_path / "am.yml").write_text("route: {receiver: none}\nreceivers: [{name: none}]\n")
    received = tmp_path / "webhook.jsonl"
    processes = [subprocess.Popen(ns_exec(lab.ns.mgmt, *cmd), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for cmd in (
        ["python3", "-c", WEBHOOK_RECEIVER, str(received), MGMT_HOST],
        ["prometheus-alertmanager", f"--config.file={tmp_path / 'am.yml'}",
         f"--storage.path={tmp_path / 'am'}", f"--web.listen-address={MGMT_HOST}:9093",
         "--cluster.listen-address="])]
    lab.settings["alerts"] = True
    lab.restart_appliance()

    def webhook() -> list[dict]:
        return webhook_posts(received)

    def alertmanager() -> list[dict]:
        out = lab.run("mgmt", "curl", "-sf", "-m", "2", f"http://{MGMT_HOST}:9093/api/v2/alerts?active=true")
        return [a for a in json.loads(out.stdout or "[]") if a["labels"]["alertname"] == "vendor-egress"]
    try:
        assert wait_for(lambda: lab.run("mgmt", "curl", "-sf", "-m", "1",
                                        f"http://{MGMT_HOST}:9093/-/ready").returncode == 0, timeout=20)
        yield webhook, alertmanager
    finally:
        lab.settings["alerts"] = False
        lab.restart_appliance()
        for p in processes:
            p.terminate()
            p.wait(timeout=10)


def test_a_vendor_attempt_alerts_and_resolves(lab, receivers):
    webhook, alertmanager = receivers
    assert lab.reload(mode="vendor-block")
    assert webhook() == [] and alertmanager() == []                # nothing before any attempt
    lab.run("ctl", "curl", "-s", "-m", "1", f"http://{VENDOR}:8080/")
    assert wait_for(lambda: [w for w in webhook() if w["status"] == "firing"], timeout=20)
    fired = [w for w in webhook() if w["status"] == "firing"][0]
    assert fired["alert"] == "vendor-egress" and fired["group"] == {"device_name": "ctl-03", "vendor": "DJI"}
    assert fired["summary"] == "ctl-03 tried to reach DJI (vendor-learned)"
    assert wait_for(lambda: alertmanager(), timeout=20)
    assert alertmanager()[0]["labels"]["station"] == "lab"
    assert wait_for(lambda: [w for w in webhook() if w["status"] == "resolved"], timeout=30)
    assert wait_for(lambda: alertmanager() == [], timeout=20)
    assert wait_for(lambda: "alert.resolved" in alert_records(lab), timeout=5)   # the log gathers 50 ms
    types = alert_records(lab)
    assert "alert.firing" in types and "alert.notify_failed" not in types


def alert_records(lab) -> list[str]:
    return [e["type"] for e in lab.events() if e["type"].startswith("alert.")]
