"""`gcsguard install | uninstall`: lay gcsguard out on a Debian / Raspberry Pi OS box.

Idempotent, and an upgrade is the same command: the package's own files (the venv, the
units, the boot table, the docs the units link to, `gcsguard` on PATH) are replaced; what
belongs to the station (config, lists, keys, logs, state) is created once and never
overwritten. Nothing here touches the ruleset or forwarding: an install or an upgrade never
opens the network. The units switch forwarding off at boot and on once the daemon's
ruleset is in force. `--wheels DIR` installs from a bundle with no registry (`gcsguard
wheels`, built on a connected machine). `--root DIR` installs into a scratch root (no users, no systemctl).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

# Standard library only: `sudo python3 -m appliance.install` runs on a bare Debian python3
# (python3-venv) before the venv exists; everything else runs through the venv's gcsguard.

PACKAGE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(PACKAGE)
UNITS = ("gcsguard-firewall-boot.service", "gcsguard.service", "gcsguard-gate.service",
         "gcsguard-verify.service", "gcsguard-verify.timer")
USERS = (("gcsguard", "gcsguard"), ("gcsguard-gate", "gcsguard"))
# What the units and the daemon call, by the Debian package that brings it.
APT = {"nft": "nftables", "ip": "iproute2", "dnsmasq": "dnsmasq-base", "modprobe": "kmod",
       "sysctl": "procps", "dig": "dnsutils", "curl": "curl", "openssl": "openssl", "nc": "netcat-openbsd"}
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
        if not _apt(offline=bool(wheels), say=say):
            return 2
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
    if venv:
        _venv(p["venv"], wheels, say)
    key = os.path.join(p["keys"], "log-signing.key")
    if not os.path.exists(key):
        made = _gcsguard(p, "keygen", "--key", key, "--pub", os.path.join(p["etc"], "log-signing.pub"))
        if made.returncode:
            say(f"the signing key could not be made: {made.stderr.strip()}")
            return 2
        say(made.stdout.strip() + " (root-only; keep log-signing.pub off the box too)")
    _package_files(p, live, say)
    problems = _check(p, config)
    if problems:
        say("gcsguard.service is not enabled until `gcsguard check` passes (the station stays "
            "closed):\n  " + "\n  ".join(problems))
    if live and os.path.isdir("/run/systemd/system"):
        _systemctl(bool(problems), say)
    return 1 if problems else 0


def _package_files(p: dict[str, str], live: bool, say) -> None:
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
    if live:                                                  # now, not at the next boot
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


def _venv(path: str, bundle: str, say) -> None:
    """The venv; from a bundle (`gcsguard wheels`: pinned, with hashes) with no index at all."""
    subprocess.run([sys.executable, "-m", "venv", path], check=True)
    pip = [os.path.join(path, "bin", "pip"), "install", "-q", "--upgrade"]
    if bundle:
        wheels = os.path.join(bundle, "wheels")
        subprocess.run([*pip, "--no-index", "--find-links", wheels, "--require-hashes",
                        "-r", os.path.join(bundle, "requirements.txt")], check=True)
        subprocess.run([*pip, "--no-index", "--no-deps", "--find-links", wheels, "gcsguard"],
                       check=True)
    else:
        subprocess.run([*pip, SOURCE], check=True)
    say(f"installed gcsguard into {path}" + (f" from {bundle}, offline" if bundle else ""))


def _gcsguard(p: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """The installed command (this interpreter's package when the venv is not built here)."""
    command = os.path.join(p["venv"], "bin", "gcsguard")
    argv = [command] if os.path.exists(command) else [sys.executable, "-m", "appliance"]
    return subprocess.run([*argv, *args], capture_output=True, text=True, cwd=SOURCE)


def _check(p: dict[str, str], config: str) -> list[str]:
    """What `gcsguard check` reports."""
    checked = _gcsguard(p, "check", "-q", "-c", config)
    if checked.returncode == 0:
        return []
    return [line for line in checked.stderr.splitlines() if line and not line.startswith("FAILED")]


def _apt(offline: bool, say) -> bool:
    """The Debian packages the station runs; installed when missing, unless offline (then
    named, for the station's own media)."""
    missing = sorted({package for command, package in APT.items() if not shutil.which(command)})
    if not missing:
        return True
    if offline or not shutil.which("apt-get"):
        say(f"missing Debian packages (install them first): {' '.join(missing)}")
        return False
    say(f"installing {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                   check=True, env=env)
    return True


def _systemctl(hold_back: bool, say) -> None:
    subprocess.run(["systemctl", "daemon-reload"], check=True)
    subprocess.run(["systemctl", "enable", "gcsguard-firewall-boot.service"], check=True)
    if hold_back:
        say("units installed; gcsguard.service not enabled until the config checks")
        return
    subprocess.run(["systemctl", "enable", "--now", "gcsguard.service", "gcsguard-gate.service",
                    "gcsguard-verify.timer"], check=True)


def main(argv: list[str] | None = None) -> int:
    """`sudo python3 -m appliance.install`, from the source tree: the same as `gcsguard
    install`, for a station that has no gcsguard yet (`--uninstall` undoes it)."""
    import argparse
    parser = argparse.ArgumentParser(prog="python3 -m appliance.install",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="/", help="install into this directory (a scratch root)")
    parser.add_argument("--no-venv", action="store_true", help="leave /opt/gcsguard/venv as it is")
    parser.add_argument("--wheels", default="", help="install the venv from this bundle "
                        "(`gcsguard wheels` on a connected machine), with no package index")
    parser.add_argument("--uninstall", action="store_true", help="remove gcsguard instead "
                        "(config, keys, logs and state stay unless --purge)")
    parser.add_argument("--purge", action="store_true", help="with --uninstall: remove those too")
    args = parser.parse_args(argv)
    if args.uninstall:
        return uninstall(args.root, purge=args.purge)
    return install(args.root, venv=not args.no_venv, wheels=args.wheels)


if __name__ == "__main__":
    sys.exit(main())
