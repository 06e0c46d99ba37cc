"""Tests mirror the source tree: every module has a test module (as mitmproxy checks)."""
import os

from tests.conftest import REPO

# Modules whose behaviour is tested through another test module, and where.
TESTED_ELSEWHERE = {
    "appliance/__main__.py": "tests/test_cli.py",
    "appliance/cli.py": "tests/test_cli.py",
    "appliance/lists/cli.py": "tests/lists/test_bundle.py",
    "appliance/daemon.py": "tests/test_daemon.py",
    "appliance/metrics.py": "tests/test_daemon.py",
    "appliance/evlog/chain.py": "tests/evlog/test_writer.py",
    "appliance/evlog/signing.py": "tests/evlog/test_verify.py",
    "appliance/evlog/sink.py": "tests/evlog/test_full_disk.py",
    "appliance/lists/index.py": "tests/lists/test_load.py",
    "appliance/review/output.py": "tests/review/test_query.py",
    "appliance/dns/server.py": "tests/dns/test_service.py",
    "appliance/lab/certs.py": "tests/lab/test_enforcement.py",
    "appliance/verify/cli.py": "tests/verify/test_lab.py",
    "appliance/review/export.py": "tests/review/test_bundle.py",
    "appliance/review/charts.py": "tests/review/test_report.py",
    "appliance/verify/probe.py": "tests/verify/test_lab.py",
    "appliance/lab/internet.py": "tests/lab/test_enforcement.py",
    "appliance/lab/lab.py": "tests/lab/test_enforcement.py",
    "appliance/lab/scenario.py": "tests/lab/test_enforcement.py",
    "appliance/lab/topology.py": "tests/lab/test_cli.py",
    "appliance/lab/labconfig.py": "tests/lab/test_enforcement.py",
    "appliance/network/lease.py": "tests/network/test_dhcp.py",
    "appliance/observe/annotate.py": "tests/packets/test_events.py",
    "appliance/observe/flows.py": "tests/observe/test_service.py",
    "appliance/review/devices.py": "tests/observe/test_service.py",
    "appliance/gate/run.py": "tests/gate/test_gate.py",
    "appliance/firewall/host.py": "tests/firewall/test_render.py",
    "addons/egress_guard.py": "tests/gate/test_addon.py",
}


def test_every_module_has_tests():
    missing = []
    for package in ("appliance", "addons"):
        for root, _, files in os.walk(os.path.join(REPO, package)):
            for name in files:
                if not name.endswith(".py") or name == "__init__.py":
                    continue
                rel = os.path.relpath(os.path.join(root, name), REPO)
                mirrored = os.path.join("tests", *rel.split(os.sep)[1:-1], "test_" + name)
                test = TESTED_ELSEWHERE.get(rel, mirrored)
                if not os.path.exists(os.path.join(REPO, test)):
                    missing.append(f"{rel} (expected {test})")
    assert not missing, "modules without tests: " + ", ".join(missing)
