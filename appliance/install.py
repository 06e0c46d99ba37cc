"""`gcsguard install | uninstall`: lay gcsguard out on a Debian / Raspberry Pi OS box.

Idempotent, and an upgrade is the same command: the package's own files (the venv, the
units) are replaced; what belongs to the station (config, lists, keys, logs, state) is
created once and never overwritten. Nothing here touches the ruleset: an install or an
upgrade never opens the network. Forwarding is switched on only once `gcsguard check`
passes. `--root DIR` installs into a scratch root (no users, no systemctl).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from .config import ConfigError
from .evlog import signing

PACKAGE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(PACKAGE)
UNITS = ("gcsguard-firewall-boot.service", "gcsguard.service", "gcsguard-gate.service",
         "gcsguard-verify.service", "gcsguard-verify.timer")
USERS = (("gcsguard", "gcsguard"), ("gcsguard-gate", "gcsguard"))
# Forwarding; and a deeper datagram queue on the local event socket (the kernel's default
# of 10 would make the gate drop events during a burst of connections).
FORWARDING = ("net.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 1\n"
              "net.unix.max_dgram_qlen = 1024\n")


def paths(root: str) -> dict[str, str]:
    def at(p: str) -> str:
        return os.path.join(root, p.lstrip("/"))
    return {"venv": at("/opt/gcsguard/venv"), "etc": at("/etc/gcsguard"), "keys": at("/etc/gcsguard/keys"),
            "state": at("/var/lib/gcsguard"), "gate": at("/var/lib/gcsguard/gate"),
            "log": at("/var/log/gcsguard"), "units": at("/etc/systemd/system"),
            "sysctl": at("/etc/sysctl.d/90-gcsguard.conf")}


def install(root: str = "/", venv: bool = True, say=print) -> int:
    missing = [d for d in ("blocklists", "systemd") if not os.path.isdir(os.path.join(SOURCE, d))]
    if missing:
        say(f"run install from a gcsguard source tree ({SOURCE} lacks {', '.join(missing)})")
        return 2
    p, live = paths(root), root in ("/", "")
    if live:
        _users(say)
    for key, mode, owner in (("etc", 0o750, "gcsguard"), ("keys", 0o700, None), ("state", 0o750, "gcsguard"),
                             ("gate", 0o700, "gcsguard-gate"), ("log", 0o750, "gcsguard")):
        os.makedirs(p[key], mode=mode, exist_ok=True)
        os.chmod(p[key], mode)
        if live and owner:
            shutil.chown(p[key], owner, "gcsguard")
    config = os.path.join(p["etc"], "gcsguard.toml")
    if not os.path.exists(config):
        shutil.copy(os.path.join(PACKAGE, "config", "example.toml"), config)
        os.chmod(config, 0o640)
        say(f"created {config} (every key at its default: edit interfaces, upstreams, mode)")
    lists = os.path.join(p["etc"], "blocklists")
    if not os.path.exists(lists):
        shutil.copytree(os.path.join(SOURCE, "blocklists"), lists,
                        ignore=shutil.ignore_patterns("*.py", "__pycache__"))
        say(f"created {lists} (the shipped lists; yours go beside them)")
    key = os.path.join(p["keys"], "log-signing.key")
    if not os.path.exists(key):
        kid = signing.generate_key(key, os.path.join(p["etc"], "log-signing.pub"))
        say(f"created signing key {kid}: {key} (root-only; keep log-signing.pub off the box too)")
    if venv:
        _venv(p["venv"], say)
    os.makedirs(p["units"], exist_ok=True)
    for unit in UNITS:                          # the package's: replaced on upgrade
        shutil.copy(os.path.join(SOURCE, "systemd", unit), os.path.join(p["units"], unit))
    problems = _check(config)
    if problems:
        say("forwarding stays OFF until `gcsguard check` passes:\n  " + "\n  ".join(problems))
        if os.path.exists(p["sysctl"]):
            os.unlink(p["sysctl"])
    else:
        os.makedirs(os.path.dirname(p["sysctl"]), exist_ok=True)
        with open(p["sysctl"], "w") as f:
            f.write(FORWARDING)
        say(f"forwarding enabled by {p['sysctl']}")
    if live and os.path.isdir("/run/systemd/system"):
        _systemctl(bool(problems), say)
    return 1 if problems else 0


def uninstall(root: str = "/", say=print) -> int:
    """Removes the package's files; keeps config, lists, keys, logs and state (evidence)."""
    p = paths(root)
    if root in ("/", "") and os.path.isdir("/run/systemd/system"):
        subprocess.run(["systemctl", "disable", "--now", "gcsguard.service", "gcsguard-gate.service",
                        "gcsguard-verify.timer"],
                       check=False)
    for unit in UNITS:
        path = os.path.join(p["units"], unit)
        if os.path.exists(path):
            os.unlink(path)
    for path in (p["sysctl"],):
        if os.path.exists(path):
            os.unlink(path)
    shutil.rmtree(p["venv"], ignore_errors=True)
    say(f"removed the units and {p['venv']}; kept {p['etc']}, {p['log']} and {p['state']}. The "
        "ruleset stays in force until `gcsguard firewall open` or a reboot without the boot unit.")
    return 0


def _users(say) -> None:
    for user, group in USERS:
        if subprocess.run(["getent", "group", group], capture_output=True).returncode:
            subprocess.run(["groupadd", "--system", group], check=True)
        if subprocess.run(["getent", "passwd", user], capture_output=True).returncode:
            subprocess.run(["useradd", "--system", "--gid", group, "--no-create-home",
                            "--shell", "/usr/sbin/nologin", user], check=True)
            say(f"created system user {user}")


def _venv(path: str, say) -> None:
    subprocess.run([sys.executable, "-m", "venv", path], check=True)
    subprocess.run([os.path.join(path, "bin", "pip"), "install", "-q", "--upgrade", SOURCE], check=True)
    say(f"installed gcsguard into {path}")


def _check(config: str) -> list[str]:
    """What `gcsguard check` would report."""
    from .cli import policy_problems
    from .policy import load_policy
    try:
        return policy_problems(load_policy(config))
    except ConfigError as e:
        return e.errors


def _systemctl(hold_back: bool, say) -> None:
    subprocess.run(["systemctl", "daemon-reload"], check=True)
    subprocess.run(["systemctl", "enable", "gcsguard-firewall-boot.service"], check=True)
    if hold_back:
        say("units installed; gcsguard.service not enabled until the config checks")
        return
    subprocess.run(["systemctl", "enable", "--now", "gcsguard.service", "gcsguard-gate.service",
                    "gcsguard-verify.timer"], check=True)
