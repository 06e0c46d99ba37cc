"""`gcsguard lab up | run | down`: the lab, and the controller-app scenario replayed in it."""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from .lab import Lab
from .topology import LabError, LabState, METRICS_PORT, MGMT_APPLIANCE, teardown

MODES = ("isolate", "vendor-block", "audit")


def add_lab_parser(sub) -> None:
    lab = sub.add_parser("lab", help="the lab: controller, appliance and internet in namespaces",
                         description="Build a lab in network namespaces (documentation addresses "
                         "only) and replay a controller app's egress techniques through gcsguard.")
    lsub = lab.add_subparsers(dest="lab_command", required=True, metavar="SUBCOMMAND")
    for name, func, text in (("up", cmd_up, "build the lab and start gcsguard in it, then return"),
                             ("run", cmd_run, "build the lab, replay the scenario, stay up until "
                              "Ctrl-C, then tear down"),
                             ("down", cmd_down, "stop the lab's processes and remove its namespaces")):
        p = lsub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        p.add_argument("--dir", default="/var/lib/gcsguard-lab",
                       help="the lab's files: config, log, state (default: /var/lib/gcsguard-lab; "
                       "every directory above it must be open to the gate's user)")
        p.add_argument("--prefix", default="gcslab", help="namespace name prefix (default gcslab)")
        if name != "down":
            p.add_argument("--mode", choices=(*MODES, "all"), default="all" if name == "run"
                           else "isolate", help="firewall mode (run: 'all' replays each in turn)")
        if name == "run":
            p.add_argument("--no-wait", action="store_true", help="tear down after the scenario")
            p.add_argument("--prometheus", action="store_true", help="also run Prometheus (if "
                           "installed) on the management host with the shipped alert rules")
        p.set_defaults(func=func)
    text = "build several stations and a central namespace (Prometheus, a federating Prometheus, " \
           "Alertmanager, an rsyslog collector), stay up until Ctrl-C, then tear down"
    p = lsub.add_parser("fleet", help=text, description=text[0].upper() + text[1:] + ".")
    p.add_argument("--dir", default="/var/lib/gcsguard-fleet", help="the fleet's files (default: "
                   "/var/lib/gcsguard-fleet): a directory per station and central/")
    p.add_argument("--prefix", default="gcsfleet", help="namespace name prefix (default gcsfleet)")
    p.add_argument("--stations", type=int, default=3, choices=range(1, 10), metavar="N",
                   help="how many stations (1-9, default 3)")
    p.add_argument("--no-wait", action="store_true", help="tear down once it is up")
    p.set_defaults(func=cmd_fleet)


def cmd_fleet(args: argparse.Namespace) -> int:
    from .fleet import CENTRAL, Fleet
    fleet = Fleet(args.dir, args.prefix, args.stations)
    print(f"gcsguard lab: building {args.stations} stations and {fleet.central} ...", flush=True)
    try:
        fleet.up()
    except LabError as e:
        print(f"lab fleet: {e}", file=sys.stderr)
        return 2
    try:
        ns = fleet.central
        names = ", ".join(s.settings["station"] for s in fleet.stations)
        print(f"""
stations    {names} (each a lab: ip netns exec {fleet.stations[0].ns.ctl} curl -m 2 http://203.0.113.10:8080/)
Prometheus  ip netns exec {ns} curl -s 'http://{CENTRAL}:9090/api/v1/query?query=up'   (region: :9091)
alerts      ip netns exec {ns} curl -s http://{CENTRAL}:9093/api/v2/alerts;  pages: {fleet.webhook_file}
log copies  {fleet.copies}/STATION  (gcsguard review verify DIR --copy --pubkey {fleet.stations[0].directory}/keys/log-signing.pub)""")
        if not args.no_wait:
            print("\nthe fleet stays up; Ctrl-C tears it down.", flush=True)
            _wait_for_interrupt()
    finally:
        for problem in fleet.down():
            print(f"lab down: {problem}", file=sys.stderr)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    lab = Lab(args.dir, args.prefix)
    try:
        lab.up(mode=args.mode)
    except LabError as e:
        print(f"lab up: {e}", file=sys.stderr)
        return 2
    _where(lab)
    print(f"\nstop it with: gcsguard lab down --dir {args.dir} --prefix {args.prefix}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    try:
        state = LabState.load(os.path.abspath(args.dir))
    except LabError as e:
        print(f"lab down: {e}", file=sys.stderr)
        return 2
    problems = teardown(state)
    os.unlink(os.path.join(state.directory, "lab.json"))
    for p in problems:
        print(f"lab down: {p}", file=sys.stderr)
    print(f"lab {state.prefix} removed (files kept in {state.directory})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .scenario import run_one, techniques
    lab = Lab(args.dir, args.prefix)
    modes = MODES if args.mode == "all" else (args.mode,)
    print(f"gcsguard lab: building namespaces {args.prefix}-{{ctl,appl,inet,mgmt}} ...", flush=True)
    try:
        lab.up(mode=modes[0])
    except LabError as e:
        print(f"lab run: {e}", file=sys.stderr)
        return 2
    failures = 0
    try:
        if args.prometheus:
            rules = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
                os.path.abspath(__file__)))), "dashboards", "prometheus", "gcsguard-rules.yml")
            url = lab.start_prometheus(rules)
            print(f"Prometheus: ip netns exec {lab.ns.mgmt} curl -s '{url}/api/v1/alerts'")
        for mode in modes:
            if lab.settings["mode"] != mode and not lab.reload(mode=mode):
                raise LabError(f"reload to {mode} was rejected")
            print(f"\n== mode {mode}: {MODE_TEXT[mode]}")
            print(f"   {'technique':46} {'controller saw':24} {'internet got':12} gcsguard logged")
            for technique in techniques(lab.pki["ca"]):
                result = run_one(lab, technique)
                failures += not result.ok
                mark = "ok " if result.ok else "!! "
                got = f"{len(result.hits)} hit(s)" if result.hits else "nothing"
                print(f"{mark}{technique.label[:46]:46} {result.client[:24]:24} {got:12} "
                      f"{result.appliance}", flush=True)
        print(f"\n{'every attempt went as the mode requires' if not failures else f'{failures} attempt(s) did NOT go as the mode requires'}")
        failures += _prove(lab, audited="audit" in modes)
        _where(lab)
        if not args.no_wait:
            print("\nthe lab stays up for you to look around; Ctrl-C tears it down.", flush=True)
            _wait_for_interrupt()
    except LabError as e:
        print(f"lab run: {e}", file=sys.stderr)
        failures += 1
    finally:
        for problem in lab.down():
            print(f"lab down: {problem}", file=sys.stderr)
    return 1 if failures else 0


MODE_TEXT = {"isolate": "nothing leaves but the allowlist (www.allowed.example tcp/80,443)",
             "vendor-block": "vendor and bypass destinations dropped, the rest allowed",
             "audit": "vendor traffic allowed and logged; bypasses still closed"}


def _prove(lab: Lab, audited: bool) -> int:
    """The appliance proves it itself (gcsguard verify from its probe), then the evidence
    an auditor gets: the signed bundle and the isolation report."""
    if lab.settings["mode"] == "audit" and not lab.reload(mode="isolate"):
        raise LabError("reload to isolate was rejected")
    print(f"\n== gcsguard verify (mode {lab.settings['mode']}): the appliance's own probe, "
          "through the same chains as the controller")
    code, results = lab.verify()
    for c in results["checks"]:
        print(f"{'ok ' if c['status'] == 'pass' else '!! '}{c['check']:14} {c['client'][:26]:26} "
              f"{c['why'] or ', '.join(e['type'] + ' ' + e['reason'] for e in c['evidence'][:2])}")
    print(f"verification {'PASSED' if code == 0 else 'FAILED'}")
    bundle, report = os.path.join(lab.directory, "evidence.tar.gz"), os.path.join(lab.directory, "report.html")
    for args in (("review", "export", "-c", lab.config_path, "--from", "2000-01-01", "--to", "2100-01-01",
                  "--out", bundle),
                 ("review", "report", bundle, "--pubkey", os.path.join(lab.directory, "keys", "log-signing.pub"),
                  "--out", report)):
        out = subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True)
        print((out.stdout or out.stderr).strip())
    if audited:
        print("(the report finds the claim contradicted: audit mode let vendor traffic through, "
              "as it does; it lists each connection)")
    return 1 if code else 0


def _where(lab: Lab) -> None:
    ns = lab.ns
    print(f"""
look around:
  events      gcsguard review show {lab.directory}/log --type egress.   (or tls., dns.)
  a device    gcsguard review timeline {lab.directory}/log --device ctl-03
  verify log  gcsguard review verify {lab.directory}/log --pubkey {lab.directory}/keys/log-signing.pub
  bundle      gcsguard review verify-bundle {lab.directory}/evidence.tar.gz --pubkey {lab.directory}/keys/log-signing.pub
  report      {lab.directory}/report.html (an auditor's isolation report of this run)
  self-test   ip netns exec {ns.appl} gcsguard verify -c {lab.config_path}
  metrics     ip netns exec {ns.mgmt} curl -s http://{MGMT_APPLIANCE}:{METRICS_PORT}/metrics | grep firewall
  ruleset     ip netns exec {ns.appl} nft list table inet gcsguard
  provenance  ip netns exec {ns.appl} gcsguard lists ip 203.0.113.10 -c {lab.config_path}
  try it      ip netns exec {ns.ctl} curl -m 3 http://203.0.113.10/""")


def _wait_for_interrupt() -> None:
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
