"""Tests mirror the source tree: every module has a test module (as mitmproxy checks)."""
import os

from tests.conftest import REPO

# Modules whose behaviour is tested through another test module, and where.
TESTED_ELSEWHERE = {
    "appliance/__main__.py": "tests/test_cli.py",
    "appliance/cli.py": "tests/test_cli.py",
    "appliance/policy/cli.py": "tests/lists/test_bundle.py",
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
    "appliance/observe/annotate.py": "tests/observe/test_packets.py",
    "appliance/observe/flows.py": "tests/observe/test_service.py",
    "appliance/review/devices.py": "tests/observe/test_service.py",
    "appliance/gate/run.py": "tests/gate/test_gate.py",
    "appliance/firewall/host.py": "tests/firewall/test_render.py",
    "addons/egress_guard.py": "tests/gate/test_addon.py",
    "appliance/lab/webhook.py": "tests/alerts/test_service.py",
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


def _imports() -> dict[str, set[str]]:
    """Import edges between the package's parts: a folder (appliance/dns) or a top-level
    module (appliance/daemon.py) is one part."""
    import ast

    def part(names: list[str]) -> str:
        if len(names) == 1:
            return "appliance"
        if os.path.isdir(os.path.join(REPO, *names[:2])):
            return names[1]
        return names[1] + ".py"

    edges: dict[str, set[str]] = {}
    for root, _, files in os.walk(os.path.join(REPO, "appliance")):
        for name in files:
            if not name.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(root, name), REPO).split(os.sep)
            package = rel[:-1]
            here = part(rel if name != "__init__.py" else package)
            for node in ast.walk(ast.parse(open(os.path.join(root, name)).read())):
                if isinstance(node, ast.ImportFrom):
                    base = package[:len(package) - node.level + 1] if node.level else []
                    targets = [base + (node.module.split(".") if node.module else [])]
                    if node.module is None:
                        targets = [base + [a.name] for a in node.names]
                elif isinstance(node, ast.Import):
                    targets = [a.name.split(".") for a in node.names]
                else:
                    continue
                for target in targets:
                    if target[0] == "appliance" and part(target) != here:
                        edges.setdefault(here, set()).add(part(target))
    return edges


def test_config_imports_no_feature_module():
    """config/ checks syntax and types; what entries mean is the policy's (policy/load.py)."""
    assert _imports().get("config", set()) <= {"appliance"}


def test_no_circle_between_folders():
    edges = _imports()

    def circle_from(start, node, path):
        for following in edges.get(node, ()):
            if following == start:
                return path + [following]
            if following not in path:
                found = circle_from(start, following, path + [following])
                if found:
                    return found
        return None
    folders = [p for p in edges if not p.endswith(".py") and p != "appliance"]
    circles = [c for c in (circle_from(f, f, [f]) for f in folders) if c]
    assert not circles, circles
