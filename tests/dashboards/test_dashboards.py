"""The Grafana dashboards: built by Grafana's SDK, and every panel's query returns data from
a real Prometheus that scraped the lab's appliance while a controller misbehaved."""
import importlib.util
import json
import os
import re
import subprocess

import textwrap
import time
import urllib.parse

import pytest

from appliance.lab.internet import ALLOWED, VENDOR, VENDOR_API
from appliance.lab.topology import LAN_V4, METRICS_PORT, MGMT_APPLIANCE, ns_exec
from tests.network.test_links import wait_for

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "dashboards")
GRAFANA = os.path.join(ROOT, "grafana")


def load_build():
    spec = importlib.util.spec_from_file_location("dashboards_build", os.path.join(ROOT, "build.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboards() -> dict[str, dict]:
    return {name: json.load(open(os.path.join(GRAFANA, name)))
            for name in sorted(os.listdir(GRAFANA)) if name.endswith(".json")}


def test_the_files_are_what_the_sdk_builds(tmp_path, monkeypatch):
    build = load_build()
    monkeypatch.setattr(build, "OUT", str(tmp_path))
    build.main()
    for name, content in dashboards().items():
        assert json.load(open(tmp_path / name)) == content, f"{name}: run dashboards/build.py"


def test_every_panel_keeps_the_station_has_an_id_and_says_what_it_shows():
    """A panel sums across stations only if its title says so; ids are unique; every panel
    has a description; counts have no decimals."""
    aggregation = re.compile(r"\b(sum|count|max|min|avg|histogram_quantile)\b\s*(?:by\s*\(([^)]*)\))?\s*\(")
    for name, d in dashboards().items():
        panels = [p for p in d["panels"] if p["type"] != "row"]
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)) and all(ids), name
        for panel in panels:
            assert panel.get("description"), f"{name}: {panel['title']} has no description"
            if panel["type"] == "stat" and panel["fieldConfig"]["defaults"].get("unit") == "short":
                assert panel["fieldConfig"]["defaults"].get("decimals") == 0, panel["title"]
            for target in panel.get("targets", []):
                for kind, by in aggregation.findall(target["expr"]):
                    if kind != "histogram_quantile" and "all stations" not in panel["title"]:
                        assert "station" in by, f"{name}: {panel['title']}: {kind} drops the station"


def test_panels_use_only_documented_metrics_and_the_variables():
    documented = set(re.findall(r"`(gcsguard_[a-z_]+)`", open(os.path.join(ROOT, "..", "docs", "metrics.md")).read()))
    uids = set()
    for name, d in dashboards().items():
        assert d["uid"] not in uids
        uids.add(d["uid"])
        for panel in d["panels"]:
            if panel["type"] == "row":
                continue
            for target in panel["targets"]:
                names = set(re.findall(r"gcsguard_[a-z_]+", target["expr"]))
                assert {re.sub(r"_bucket$", "", n) for n in names} <= documented, (name, panel["title"])
                assert 'station=~"$station"' in target["expr"], (name, panel["title"])
                if name != "gcsguard-fleet.json":      # the fleet's rows are stations, not appliances
                    assert 'instance=~"$instance"' in target["expr"], (name, panel["title"])


PROMETHEUS_CONFIG = textwrap.dedent(f"""\
    global:
      scrape_interval: 1s
      evaluation_interval: 1s
    scrape_configs:
      - job_name: gcsguard
        static_configs:
          - targets: ["{MGMT_APPLIANCE}:{METRICS_PORT}"]
            labels: {{station: lab}}
    """)


@pytest.fixture
def prometheus(lab, tmp_path):
    """Debian's Prometheus on the lab's management host, scraping the appliance every second."""
    config = tmp_path / "prometheus.yml"
    config.write_text(PROMETHEUS_CONFIG)
    process = subprocess.Popen(ns_exec(lab.ns.mgmt, "prometheus", f"--config.file={config}",
                                       f"--storage.tsdb.path={tmp_path / 'data'}",
                                       "--web.listen-address=127.0.0.1:9090"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def api(path: str, **params) -> dict:
        url = f"http://127.0.0.1:9090/api/v1/{path}?{urllib.parse.urlencode(params, doseq=True)}"
        out = lab.run("mgmt", "curl", "-sf", "-m", "5", url)
        return json.loads(out.stdout) if out.returncode == 0 else {}
    try:
        assert wait_for(lambda: api("query", query='up{job="gcsguard"} == 1').get("data", {}).get("result"),
                        timeout=30)
        yield api
    finally:
        process.terminate()
        process.wait(timeout=20)


def misbehave(lab) -> None:
    """A controller's bad afternoon, and one good request (each layer and kind once)."""
    lab.run("ctl", "dig", f"@{LAN_V4}", "mydjiflight.dji.com")                       # dns block
    lab.run("ctl", "dig", "+time=1", "@198.51.100.53", "www.allowed.example")         # dns bypass
    lab.run("ctl", "dig", "+tls", "+time=1", "+tries=1", "@198.51.100.53", "x.example")  # DoT
    lab.run("ctl", "curl", "-s", "-m", "1", f"http://{VENDOR}:8080/")                 # ip drop
    lab.run("ctl", "curl", "-s", "-m", "1", f"http://{VENDOR_API}:8080/")             # direct-ip
    lab.run("ctl", "curl", "-s", "-m", "2", "-k", f"https://{VENDOR}/")               # tls refusal
    lab.run("ctl", "curl", "-s", "-m", "2", f"http://{ALLOWED}/d?dn=x.example")       # http refusal
    lab.run("ctl", "curl", "-s", "-m", "2", "--cacert", lab.pki["ca"], "https://www.allowed.example/")


def substitute(expr: str) -> str:
    return (expr.replace("$instance", ".*").replace("$station", ".*").replace("$device", "ctl-03")
            .replace("$__rate_interval", "1m"))


def test_every_panel_has_data_after_the_scenario(lab, prometheus):
    assert lab.reload(mode="vendor-block")
    assert lab.verify()[0] == 0               # the verification panels
    for _ in range(2):                        # twice, a few seconds apart: rates need two samples
        misbehave(lab)
        time.sleep(3)
    empty = []
    for name, d in dashboards().items():
        for panel in d["panels"]:
            for target in panel.get("targets", []):
                result = prometheus("query", query=substitute(target["expr"])).get("data", {}).get("result")
                if not result:
                    empty.append(f"{name}: {panel['title']}: {target['expr']}")
    assert not empty, "panels without data:\n" + "\n".join(empty)
    # the variables' own queries: stations, appliances and devices to choose from
    assert prometheus("label/station/values", **{"match[]": "gcsguard_build_info"})["data"] == ["lab"]
    devices = prometheus("label/device/values", **{"match[]": "gcsguard_egress_attempts_total"})["data"]
    assert "ctl-03" in devices



