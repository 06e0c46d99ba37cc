"""A fleet in the lab: several stations and one central management namespace running the
real engines from Debian's packages, as a district's IT runs them.

    station k (a whole lab: ctl, appl, inet, mgmt)        central (CENTRAL on lo)
    appl mgmt0 10.71.k.1 -- mgmt 10.71.k.2 | central0 10.72.k.2 ---- ck 10.72.k.1
                                                                   Prometheus   :9090 (scrapes every station)
    appl: the station's rsyslog ships the signed log              Prometheus   :9091 (a region, federating)
          and checkpoints to the collector over RELP              Alertmanager :9093 -> webhook :9095
                                                                   rsyslog      :2514 (one directory per station)

Stations run in vendor-block with the gate; the central Prometheus has the shipped alert
rules, their `for:` (and the shipping stall's window) shortened to seconds.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import yaml

from . import topology
from .lab import Lab
from .topology import LabError, LabState, Namespaces, ip, sysctl
from .webhook import WEBHOOK_RECEIVER, webhook_posts

CENTRAL = "10.72.255.1"
COLLECTOR_PORT = 2514
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(REPO, "dashboards", "prometheus", "gcsguard-rules.yml")
ALERTMANAGER = os.path.join(REPO, "dashboards", "alertmanager", "alertmanager.yml")


class Fleet:
    def __init__(self, directory: str, prefix: str = "gcsfleet", stations: int = 3) -> None:
        self.directory = os.path.abspath(directory)
        self.stations = [Lab(os.path.join(self.directory, f"station-{k}"), f"{prefix}{k}", index=k,
                             station=f"station-{k}") for k in range(1, stations + 1)]
        self.state = LabState(f"{prefix}c", os.path.join(self.directory, "central"))
        self.central = Namespaces(self.state.prefix).mgmt          # torn down with the state
        self.copies = os.path.join(self.state.directory, "logs")   # the collector's station dirs

    # --- life cycle ---------------------------------------------------------------------
    def up(self, **settings) -> "Fleet":
        os.makedirs(self.state.directory, exist_ok=True)
        os.chmod(self.directory, 0o755)                # a station's lab checks its ancestors
        self.state.save()
        try:
            ip("netns", "add", self.central)
            ip("link", "set", "lo", "up", ns=self.central)
            ip("addr", "add", f"{CENTRAL}/32", "dev", "lo", ns=self.central)
            self.start_collector()
            for station in self.stations:
                station.up(mode="vendor-block", ship=f"{CENTRAL}:{COLLECTOR_PORT}", **settings)
                self._link(station)
                self.start_shipper(station)
            self._start_alerting()
            self._start_prometheus()
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> list[str]:
        problems = []
        for station in self.stations:
            problems += station.down()
        problems += topology.teardown(self.state)
        if os.path.exists(os.path.join(self.state.directory, "lab.json")):
            os.unlink(os.path.join(self.state.directory, "lab.json"))
        return problems

    def _link(self, station: Lab) -> None:
        """Station k's management network, routed (not bridged) to the central namespace."""
        k, mgmt = station.index, station.ns.mgmt
        ip("link", "add", f"c{k}", "netns", self.central, "type", "veth", "peer", "name", "central0",
           "netns", mgmt)
        ip("addr", "add", f"10.72.{k}.1/24", "dev", f"c{k}", ns=self.central)
        ip("addr", "add", f"10.72.{k}.2/24", "dev", "central0", ns=mgmt)
        ip("link", "set", f"c{k}", "up", ns=self.central)
        ip("link", "set", "central0", "up", ns=mgmt)
        sysctl(mgmt, {"net.ipv4.ip_forward": 1})
        ip("route", "add", f"{CENTRAL}/32", "via", f"10.72.{k}.1", ns=mgmt)
        ip("route", "add", "10.72.0.0/16", "via", station.mgmt_host, ns=station.ns.appl)
        ip("route", "add", f"10.71.{k}.0/24", "via", f"10.72.{k}.2", ns=self.central)

    # --- the station's shipper and the central engines -------------------------------------
    def start_shipper(self, station: Lab) -> None:
        """The station's rsyslog, configured by `gcsguard ship station-config` (as installed)."""
        work = os.path.join(station.directory, "state", "ship")
        dropin = os.path.join(station.directory, "rsyslog-ship.conf")
        self._gcsguard("ship", "station-config", "-c", station.config_path, "--out", dropin)
        master = os.path.join(station.directory, "rsyslog.conf")
        with open(master, "w") as f:          # Debian's rsyslog.conf sets the work directory
            f.write(f'global(workDirectory="{work}")\ninclude(file="{dropin}")\n')
        pidfile = os.path.join(work, "rsyslogd.pid")
        if os.path.exists(pidfile):          # a killed one's
            os.unlink(pidfile)
        process = topology.start(station.state, "rsyslog", station.ns.appl, "rsyslogd", "-n", "-f", master,
                                 "-i", pidfile)
        topology.wait_ready(station.state, "rsyslog", process, lambda: os.path.exists(pidfile))

    def stop_shipper(self, station: Lab, sig: int = signal.SIGTERM) -> None:
        topology.stop(station.state, "rsyslog", sig)

    def start_collector(self) -> None:
        work = os.path.join(self.state.directory, "rsyslog")
        os.makedirs(work, exist_ok=True)
        dropin = os.path.join(self.state.directory, "rsyslog-collector.conf")
        self._gcsguard("ship", "collector-config", "--listen", f"{CENTRAL}:{COLLECTOR_PORT}",
                       "--dir", self.copies, "--out", dropin)
        master = os.path.join(self.state.directory, "rsyslog.conf")
        with open(master, "w") as f:
            f.write(f'global(workDirectory="{work}")\ninclude(file="{dropin}")\n')
        process = topology.start(self.state, "collector", self.central, "rsyslogd", "-n", "-f", master,
                                 "-i", os.path.join(work, "rsyslogd.pid"))
        self._wait_port(COLLECTOR_PORT, process, "collector")

    def stop_collector(self) -> None:
        topology.stop(self.state, "collector")

    def _start_alerting(self) -> None:
        with open(ALERTMANAGER) as f:
            am = yaml.safe_load(f)
        am["route"].update(group_wait="1s", group_interval="2s", repeat_interval="1h")
        for receiver in am["receivers"]:
            for hook in receiver.get("webhook_configs", []):
                hook["url"] = hook["url"].replace("127.0.0.1", CENTRAL)
        path = os.path.join(self.state.directory, "alertmanager.yml")
        with open(path, "w") as f:
            yaml.safe_dump(am, f)
        self.webhook_file = os.path.join(self.state.directory, "webhook.jsonl")
        hook = topology.start(self.state, "webhook", self.central, sys.executable, "-c", WEBHOOK_RECEIVER,
                              self.webhook_file, CENTRAL, "9095")
        self._wait_port(9095, hook, "webhook")
        process = topology.start(self.state, "alertmanager", self.central, "prometheus-alertmanager",
                                 f"--config.file={path}", f"--storage.path={self.state.directory}/am",
                                 f"--web.listen-address={CENTRAL}:9093", "--cluster.listen-address=")
        self._wait_ready(9093, process, "alertmanager")

    def _start_prometheus(self) -> None:
        with open(RULES) as f:       # the lab's alerts fire in seconds, not minutes
            rules = re.sub(r"(\n\s+for: )\S+", r"\g<1>5s", f.read())
        rules = rules.replace("[15m]", "[20s]")    # GcsguardShippingStalled's window
        rules_path = os.path.join(self.state.directory, "rules.yml")
        with open(rules_path, "w") as f:
            f.write(rules)
        targets = [{"targets": [f"{s.mgmt_appliance}:{topology.METRICS_PORT}"],
                    "labels": {"station": s.settings["station"]}} for s in self.stations]
        central = {"global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
                   "rule_files": [rules_path],
                   "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"{CENTRAL}:9093"]}]}]},
                   "scrape_configs": [{"job_name": "gcsguard", "static_configs": targets}]}
        # a region's Prometheus, as dashboards/prometheus/federation.yml shows
        region = {"global": {"scrape_interval": "2s"},
                  "scrape_configs": [{"job_name": "federate", "honor_labels": True, "metrics_path": "/federate",
                                      "params": {"match[]": ['{job="gcsguard"}', '{__name__=~"ALERTS.*"}']},
                                      "static_configs": [{"targets": [f"{CENTRAL}:9090"]}]}]}
        for name, port, config in (("prometheus", 9090, central), ("region", 9091, region)):
            path = os.path.join(self.state.directory, f"{name}.yml")
            with open(path, "w") as f:
                yaml.safe_dump(config, f)
            process = topology.start(self.state, name, self.central, "prometheus", f"--config.file={path}",
                                     f"--storage.tsdb.path={self.state.directory}/{name}-data",
                                     f"--web.listen-address={CENTRAL}:{port}")
            self._wait_ready(port, process, name)

    # --- looking inside -----------------------------------------------------------------
    def query(self, expr: str, port: int = 9090) -> list[dict]:
        out = self.run("curl", "-sf", "-m", "5", "--data-urlencode", f"query={expr}",
                       f"http://{CENTRAL}:{port}/api/v1/query")
        return json.loads(out.stdout)["data"]["result"] if out.returncode == 0 else []

    def alerts(self) -> list[dict]:
        """Active alerts in Alertmanager (what on-call is paged with)."""
        out = self.run("curl", "-sf", "-m", "3", f"http://{CENTRAL}:9093/api/v2/alerts?active=true")
        return json.loads(out.stdout or "[]")

    def pages(self) -> list[dict]:
        return webhook_posts(self.webhook_file)

    def run(self, *cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(topology.ns_exec(self.central, *cmd), capture_output=True, text=True,
                              timeout=30, stdin=subprocess.DEVNULL)

    def copy_of(self, station: Lab) -> str:
        return os.path.join(self.copies, station.settings["station"])

    # --- helpers ------------------------------------------------------------------------
    def _gcsguard(self, *args: str) -> None:
        out = subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True)
        if out.returncode:
            raise LabError(f"gcsguard {' '.join(args)}: {out.stderr.strip()}")

    def _wait_port(self, port: int, process, name: str) -> None:
        topology.wait_ready(self.state, name, process, lambda: self.run(
            "sh", "-c", f"ss -Hltn 'sport = :{port}' | grep -q .").returncode == 0, timeout=30)

    def _wait_ready(self, port: int, process, name: str) -> None:
        topology.wait_ready(self.state, name, process, lambda: self.run(
            "curl", "-sf", "-m", "1", f"http://{CENTRAL}:{port}/-/ready").returncode == 0, timeout=30)
