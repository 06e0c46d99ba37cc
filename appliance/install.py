"""`gcsguard install | uninstall`: lay gcsguard out on a Debian / Raspberry Pi OS box.

Idempotent, and an upgrade is the same command: the package's own files (the venv, the
units, the boot table, the docs the units link to, `gcsguard` on PATH) are replaced; what
belongs to the station (config, lists, keys, logs, state) is created once and never
overwritten. Nothing here touches the ruleset or forwarding: an install or an upgrade never
opens the network. The units switch forwarding off at boot and on once the daemon's
ruleset is in force. `--wheels DIR` installs from a bundle of wheels with no registry
(`gcsguard-bundle`). `--root DIR` installs into a scratch root (no users, no systemctl).
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
# A deeper datagram queue on the local event socket (the kernel's default of 10 would make
# the gate drop events during a burst of connections). Forwarding is the units' to switch.
SYSCTL = "net.unix.max_dgram_qlen = 1024\n"
DOCS = ("README.md", "docs")           # what the units' Documentation= lines point to


def paths(root: str) -> dict[str, str]:
    def at(p: str) -> str:
        return os.path.join(root, p.lstrip("/"))
    return {"opt": at("/opt/gcsguard"), "venv": at("/opt/gcsguard/venv"),
            "boot": at("/opt/gcsguard/boot.nft"), "bin": at("/usr/local/bin/gcsguard"),
            "etc": at("/etc/gcsguard"), "keys": at("/etc/gcsguard/keys"),
            "state": at("/var/lib/gcsguard"), "gate": at("/var/lib/gcsguard/gate"),
            "log": at("/var/log/gcsguard"), "units": at("/etc/systemd/system"),
            "sysctl": at("/etc/sysctl.d/90-gcsguard.conf")}


def install(root: str = "/", venv: bool = True, wheels: str = "", say=print) -> int:
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
        say(f"created {config} (every key at its default: edit interfaces, upstreams, mode)")
    os.chmod(config, 0o640)                     # the service reads it as group gcsguard
    if live:
        shutil.chown(config, "root", "gcsguard")
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
        _venv(p["venv"], wheels, say)
    _package_files(p, say)
    problems = _check(config)
    if problems:
        say("gcsguard.service is not enabled until `gcsguard check` passes (the station stays "
            "closed):\n  " + "\n  ".join(problems))
    if live and os.path.isdir("/run/systemd/system"):
        _systemctl(bool(problems), say)
    return 1 if problems else 0


def _package_files(p: dict[str, str], say) -> None:
    """The package's own files, replaced on upgrade: units, boot table, docs, sysctl, PATH."""
    os.makedirs(p["units"], exist_ok=True)
    for unit in UNITS:
        shutil.copy(os.path.join(SOURCE, "systemd", unit), os.path.join(p["units"], unit))
    os.makedirs(p["opt"], mode=0o755, exist_ok=True)
    shutil.copy(os.path.join(PACKAGE, "firewall", "boot.nft"), p["boot"])
    for name in DOCS:
        source, target = os.path.join(SOURCE, name), os.path.join(p["opt"], name)
        if os.path.isdir(source):
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)
        elif os.path.exists(source):
            shutil.copy(source, target)
    os.makedirs(os.path.dirname(p["sysctl"]), exist_ok=True)
    with open(p["sysctl"], "w") as f:
        f.write(SYSCTL)
    if p["sysctl"] == "/etc/sysctl.d/90-gcsguard.conf":          # now, not at the next boot
        subprocess.run(["sysctl", "-q", "-p", p["sysctl"]], check=False)
    os.makedirs(os.path.dirname(p["bin"]), exist_ok=True)
    if os.path.lexists(p["bin"]):
        os.unlink(p["bin"])
    os.symlink(os.path.join(p["venv"], "bin", "gcsguard"), p["bin"])
    say(f"units, {p['boot']}, the docs and {p['bin']} in place")


def uninstall(root: str = "/", purge: bool = False, say=print) -> int:
    """Removes the package's files and switches forwarding off (the station no longer routes);
    keeps config, lists, keys, logs and state (evidence) unless `purge`."""
    p, live = paths(root), root in ("/", "")
    if live and os.path.isdir("/run/systemd/system"):
        subprocess.run(["systemctl", "disable", "--now", *UNITS], check=False)
    for unit in UNITS:
        path = os.path.join(p["units"], unit)
        if os.path.exists(path):
            os.unlink(path)
    for path in (p["sysctl"], p["bin"]):
        if os.path.lexists(path):
            os.unlink(path)
    shutil.rmtree(p["opt"], ignore_errors=True)
    if live:
        from .firewall.boot import set_forwarding
        set_forwarding(False)
        if os.path.isdir("/run/systemd/system"):
            subprocess.run(["systemctl", "daemon-reload"], check=False)
    kept = f"kept {p['etc']}, {p['log']} and {p['state']}"
    if purge:
        for key in ("etc", "state", "log"):
            shutil.rmtree(p[key], ignore_errors=True)
        if live:
            for user, _ in USERS:
                subprocess.run(["userdel", user], check=False, capture_output=True)
            subprocess.run(["groupdel", "gcsguard"], check=False, capture_output=True)
        kept = "removed the config, keys, logs and state too (--purge)"
    say(f"removed the units, /opt/gcsguard and {p['bin']}; forwarding is off; {kept}. The "
        "ruleset stays in force until `gcsguard firewall open` or a reboot.")
    return 0


def _users(say) -> None:
    for user, group in USERS:
        if subprocess.run(["getent", "group", group], capture_output=True).returncode:
            subprocess.run(["groupadd", "--system", group], check=True)
        if subprocess.run(["getent", "passwd", user], capture_output=True).returncode:
            subprocess.run(["useradd", "--system", "--gid", group, "--no-create-home",
                            "--shell", "/usr/sbin/nologin", user], check=True)
            say(f"created system user {user}")


def _venv(path: str, wheels: str, say) -> None:
    """The venv; from `wheels` (a bundle directory, pinned with hashes) with no index at all."""
    subprocess.run([sys.executable, "-m", "venv", path], check=True)
    pip = [os.path.join(path, "bin", "pip"), "install", "-q", "--upgrade"]
    if wheels:
        subprocess.run([*pip, "--no-index", "--find-links", wheels, "--require-hashes",
                        "-r", os.path.join(wheels, "requirements.txt")], check=True)
        subprocess.run([*pip, "--no-index", "--no-deps", "--find-links", wheels, "gcsguard"],
                       check=True)
    else:
        subprocess.run([*pip, SOURCE], check=True)
    say(f"installed gcsguard into {path}" + (f" from {wheels}, offline" if wheels else ""))


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
