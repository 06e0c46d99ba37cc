"""One lab, driven from Python: up, run commands in it, switch modes by reload, read what happened.

Used by `gcsguard lab` and, as one session-scoped fixture, by the tests.
"""
from __future__ import annotations

import glob
import json
import os
import shlex
import signal
import subprocess
import sys
import time

from prometheus_client.parser import text_string_to_metric_families

from ..atomic import atomic_write
from ..evlog import signing
from . import topology
from .certs import write_lab_pki
from .labconfig import (
    DEFAULT_ALLOW,
    GATE_UID,
    LAB_ALERT_RULES,
    LAB_LISTS,
    render_config,
    shipped_lists,
)
from .topology import LabError, LabState, Namespaces


class Lab:
    def __init__(self, directory: str, prefix: str = "gcslab", index: int = 0, station: str = "lab") -> None:
        self.directory = os.path.abspath(directory)
        self.ns = Namespaces(prefix)
        self.state = LabState(prefix, self.directory)
        self.index = index                              # a fleet's station number (0: alone)
        self.mgmt_appliance, self.mgmt_host = topology.mgmt_addresses(index)
        self.settings = {"station": station, "mgmt_index": index, "ship": "",
                         "mode": "isolate", "allow": list(DEFAULT_ALLOW), "ipv6": "off", "quic": False,
                         "serve_dhcp": False, "gate": True, "alerts": False,
                         "probe_netns": self.ns.probe,
                         # short for tests to see records soon; benches set a station's values
                         "log_rate": 1000, "flow_progress_interval": 2.0, "dhcp_unknown_leases": 8}
        self.appliance: subprocess.Popen | None = None
        self._gate_seen = 0

    # --- life cycle ---------------------------------------------------------------------
    def up(self, appliance: bool = True, **settings) -> "Lab":
        """The namespaces and the simulated internet; and the appliance and its gate, unless
        something else will be the appliance (a booted station in the real-boot tests)."""
        self.settings.update(settings)
        closed = _closed_ancestor(self.directory)
        if closed:
            raise LabError(f"{closed} is closed to the gate's user (mode {os.stat(closed).st_mode & 0o777:o}): "
                           f"the gate's user could not reach {self.directory}; use --dir under "
                           "/var/lib or /tmp")
        os.makedirs(self.directory, exist_ok=True)
        os.chmod(self.directory, 0o750)            # the gate's group reads config, lists, state
        if os.path.exists(os.path.join(self.directory, "lab.json")):
            raise LabError(f"{self.directory}: a lab is already here; run `gcsguard lab down` first")
        self.state.save()
        shipped_lists(self.directory, fresh=True)
        try:
            topology.build(self.ns, self.index)
            self._write_files()
            internet = topology.start(self.state, "internet", self.ns.inet, sys.executable, "-m",
                                      "appliance.lab.internet", self.directory)
            self._wait(lambda: "internet ready" in self._read("internet.out"), internet, "internet")
            if appliance:
                self.start_appliance()
                if self.settings["gate"]:
                    self.start_gate()
        except BaseException:
            self.down()
            raise
        return self

    def start_gate(self) -> None:
        """The gate as its own process and user (uid 64500, group 0 for the lab's files: the
        output chain applies the LAN's policy to that uid)."""
        gate_dir = os.path.join(self.directory, "gate")
        os.makedirs(gate_dir, exist_ok=True)
        os.chown(gate_dir, GATE_UID, 0)
        started = self._read("gate.out").count("Proxy listening")      # earlier runs' lines
        process = topology.start(self.state, "gate", self.ns.appl, *self._as_gate(
            "-m", "appliance", "gate", "-c", self.config_path))
        self._wait(lambda: self._read("gate.out").count("Proxy listening") > started, process, "gate")

    def _as_gate(self, *args: str) -> list[str]:
        """Python with `args` as the gate's uid, which may not read a checkout under a 0700
        home (root's): in a mount namespace of its own, the code and the venv are bound
        under the lab directory (its group's) and it runs from there. Gone with the process."""
        code = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        binds = [(code, os.path.join(self.directory, "gate-code"))]
        python = sys.executable
        if sys.prefix != sys.base_prefix:                   # a venv: bound too
            binds.append((sys.prefix, os.path.join(self.directory, "gate-venv")))
            python = os.path.join(binds[-1][1], os.path.relpath(sys.executable, sys.prefix))
        for _, view in binds:
            os.makedirs(view, exist_ok=True)
        mounts = " && ".join(f"mount --bind {shlex.quote(src)} {shlex.quote(view)}"
                             for src, view in binds)
        run = shlex.join(["setpriv", f"--reuid={GATE_UID}", "--regid=0", "--clear-groups",
                          python, *args])
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                f"{mounts} && PYTHONPATH={shlex.quote(binds[0][1])} exec {run}"]

    def stop_gate(self, sig: int = signal.SIGTERM) -> None:
        topology.stop(self.state, "gate", sig)

    def start_prometheus(self, rules: str) -> str:
        """Debian's Prometheus on the management host, scraping the appliance every 5 s with
        the shipped alert rules; returns its URL (inside the lab)."""
        import shutil
        if shutil.which("prometheus") is None:
            raise LabError("prometheus is not installed (apt install prometheus)")
        config = os.path.join(self.directory, "prometheus.yml")
        with open(config, "w") as f:
            f.write(f"""global: {{scrape_interval: 5s, evaluation_interval: 5s}}
rule_files: ["{rules}"]
scrape_configs:
  - job_name: gcsguard
    static_configs:
      - targets: ["{self.mgmt_appliance}:{topology.METRICS_PORT}"]
        labels: {{station: {self.settings['station']}}}
""")
        url = f"http://{self.mgmt_host}:9090"
        process = topology.start(self.state, "prometheus", self.ns.mgmt, "prometheus",
                                 f"--config.file={config}",
                                 f"--storage.tsdb.path={os.path.join(self.directory, 'prometheus')}",
                                 f"--web.listen-address={self.mgmt_host}:9090")
        self._wait(lambda: self.run("mgmt", "curl", "-sf", "-m", "1", f"{url}/-/ready").returncode == 0,
                   process, "prometheus")
        return url

    def restart_appliance(self) -> None:
        """For settings only a restart applies ([alerts], listeners): the ruleset stays."""
        os.kill(self.state.pids["appliance"], signal.SIGTERM)
        self.appliance.wait(timeout=30)
        self.write_config()
        self.start_appliance()

    def start_appliance(self) -> None:
        self.appliance = topology.start(self.state, "appliance", self.ns.appl, sys.executable, "-m",
                                        "appliance",
                                        "run", "-c", self.config_path)
        # Ready when the ruleset is in force and every listed name was resolved once.
        self._wait(lambda: self.metric("gcsguard_firewall_learn_pending") == 0, self.appliance,
                   "appliance", timeout=60)

    def down(self) -> list[str]:
        problems = topology.teardown(self.state)
        for path in glob.glob(os.path.join(self.directory, "lab.json")):
            os.unlink(path)
        return problems

    def _wait(self, ready, process: subprocess.Popen, name: str, timeout: float = 20.0) -> None:
        topology.wait_ready(self.state, name, process, ready, timeout)

    def _read(self, name: str) -> str:
        try:
            with open(os.path.join(self.directory, name), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # --- files ----------------------------------------------------------------------------
    @property
    def config_path(self) -> str:
        return os.path.join(self.directory, "gcsguard.toml")

    def _write_files(self) -> None:
        d = self.directory
        self.pki = write_lab_pki(d)
        os.makedirs(os.path.join(d, "lists"), exist_ok=True)
        for name, (vendor, category, address) in LAB_LISTS.items():
            with open(os.path.join(d, "lists", name), "w") as f:
                f.write(f"# vendor: {vendor}\n# category: {category}\n# type: ip\n{address}\n")
        with open(os.path.join(d, "alert-rules.toml"), "w") as f:
            f.write(LAB_ALERT_RULES)
        key = os.path.join(d, "keys", "log-signing.key")
        if not os.path.exists(key):
            signing.generate_key(key, os.path.join(d, "keys", "log-signing.pub"))
        self.write_config()

    def write_config(self) -> None:
        atomic_write(self.config_path, render_config(
            self.settings, [*shipped_lists(self.directory), os.path.join(self.directory, "lists")]),
            mode=0o644)

    def reload(self, **settings) -> bool:
        """Rewrite the config, SIGHUP the appliance, wait for the verdict; True if applied."""
        self.settings.update(settings)
        self.write_config()
        return self.sighup()

    def sighup(self) -> bool:
        """SIGHUP and wait until the reload's outcome is both counted and in the log."""
        last = self.last_n()
        before = (self.metric("gcsguard_config_reloads_total", result="success") or 0,
                  self.metric("gcsguard_config_reloads_total", result="failure") or 0)
        os.kill(self.state.pids["appliance"], signal.SIGHUP)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = (self.metric("gcsguard_config_reloads_total", result="success") or 0,
                   self.metric("gcsguard_config_reloads_total", result="failure") or 0)
            if now != before:
                self._wait_logged(("config.loaded", "config.rejected"), last, deadline)
                if now[0] > before[0] and "gate" in self.state.pids:
                    self._wait_gate_follows()
                return now[0] > before[0]
            time.sleep(0.05)
        raise LabError("the appliance did not answer SIGHUP within 20 s")

    def _wait_logged(self, types: tuple[str, ...], after: int, deadline: float) -> None:
        # the metric moves at once; the log's sink gathers its batch for up to 50 ms more
        while not any(e["type"] in types for e in self.events(after)):
            if time.monotonic() > deadline:
                raise LabError(f"no {' or '.join(types)} record after n={after}")
            time.sleep(0.05)

    def _wait_gate_follows(self) -> None:
        """A reload is whole once the gate runs the policy the daemon applied."""
        with open(os.path.join(self.directory, "state", "applied-policy.json")) as f:
            sha = json.load(f)["config_sha256"]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if any(e["type"] == "gate.policy_loaded" and e["details"]["config_sha256"] == sha
                   for e in self.events(self._gate_seen)):
                self._gate_seen = max(e["n"] for e in self.events(self._gate_seen))
                return
            time.sleep(0.1)
        raise LabError("the gate did not take the new policy within 15 s")

    def verify(self) -> tuple[int, dict]:
        """`gcsguard verify` in the appliance's namespace: (exit status, its results)."""
        proc = self.run("appl", sys.executable, "-m", "appliance", "verify", "-c", self.config_path,
                        "--json", timeout=120)
        try:
            return proc.returncode, json.loads(proc.stdout)
        except ValueError:
            raise LabError(f"gcsguard verify: exit {proc.returncode}: {proc.stderr.strip()}") from None

    # --- looking inside -----------------------------------------------------------------
    def run(self, role: str, *cmd: str, timeout: float = 15.0) -> subprocess.CompletedProcess:
        """A command in one of the lab's namespaces (ctl, appl, inet, mgmt)."""
        return subprocess.run(topology.ns_exec(getattr(self.ns, role), *cmd), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def metrics_text(self) -> str:
        """Scraped from the management host, the way a station's Prometheus would."""
        url = f"http://{self.mgmt_appliance}:{topology.METRICS_PORT}/metrics"
        return self.run("mgmt", "curl", "-sf", "--max-time", "3", url, timeout=10).stdout

    def metric(self, name: str, **labels) -> float | None:
        for family in text_string_to_metric_families(self.metrics_text()):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return sample.value
        return None

    def last_n(self) -> int:
        """The chain position of the log's last complete record (0 for an empty log)."""
        for path in reversed(self._log_files()):
            n = _last_n_of(path)
            if n:
                return n
        return 0

    def _log_files(self) -> list[str]:
        return sorted(glob.glob(os.path.join(self.directory, "log", "events-*.jsonl")))

    def events(self, after: int = 0) -> list[dict]:
        """Log records with chain position n > `after` (the log is read as files, like an
        auditor). Tests poll this: files and lines before `after` are skipped by their n
        (every line starts `{"n":N,`) without being parsed."""
        records = []
        for path in self._log_files():
            if after and _last_n_of(path) <= after:
                continue
            with open(path, "rb") as f:
                for line in f:
                    if line.endswith(b"\n") and (not after or _n_of(line) > after):
                        records.append(json.loads(line))
        return records

    def upstream_queries(self, after: float = 0.0) -> list[str]:
        """The names the appliance's upstream resolver was asked, as it recorded them."""
        from .internet import UPSTREAM_DNS
        return [h["qname"] for h in self.hits(after) if h["addr"] == UPSTREAM_DNS and "qname" in h]

    def hits(self, after: float = 0.0, hellos: bool = False) -> list[dict]:
        """What the simulated internet received: a connection, datagram or DNS question per
        record; with `hellos`, also every ClientHello a TLS service read, handshake or not."""
        records = []
        for line in self._read("hits.jsonl").splitlines():
            hit = json.loads(line)
            if hit["t"] > after and (hellos or hit.get("stage") != "hello"):
                records.append(hit)
        return records


def _closed_ancestor(path: str) -> str:
    """The first directory above `path` the gate's user (GATE_UID, group 0) cannot pass
    through ('' if none)."""
    parent = os.path.dirname(os.path.abspath(path))
    while True:
        if os.path.exists(parent) and not _passable(os.stat(parent)):
            return parent
        if parent == os.path.dirname(parent):
            return ""
        parent = os.path.dirname(parent)


def _passable(st: os.stat_result) -> bool:
    return bool(st.st_mode & 0o001 or (st.st_gid == 0 and st.st_mode & 0o010)
                or (st.st_uid == GATE_UID and st.st_mode & 0o100))


def _last_n_of(path: str) -> int:
    """The n of a log file's last complete line, read from its tail (0: none)."""
    with open(path, "rb") as f:
        start = max(0, os.fstat(f.fileno()).st_size - 65536)
        f.seek(start)
        lines = f.read().split(b"\n")[1 if start else 0:-1]     # whole lines only
    return _n_of(lines[-1]) if lines else 0


def _n_of(line: bytes) -> int:
    """A record's chain position, read from its first bytes: every line starts `{"n":N,`."""
    return int(line[5:line.index(b",", 5)])
