"""`gcsguard install | uninstall` into a scratch root: layout, modes, nothing of the station's
ever overwritten, forwarding never the installer's to switch."""
import os
import re
import stat
import subprocess
import sys


def gcsguard(*args):
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True,
                          timeout=600)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_install_upgrade_and_uninstall_in_a_scratch_root(tmp_path):
    root = str(tmp_path)
    first = gcsguard("install", "--root", root, "--no-venv")
    etc = tmp_path / "etc" / "gcsguard"
    assert mode(etc / "keys") == 0o700 and mode(etc / "keys" / "log-signing.key") == 0o600
    assert mode(tmp_path / "var" / "lib" / "gcsguard") == 0o750
    assert mode(tmp_path / "var" / "log" / "gcsguard") == 0o750
    assert (etc / "blocklists" / "vendors" / "dji.list").exists()
    assert not list((etc / "blocklists").glob("*.py"))
    for unit in ("gcsguard-firewall-boot.service", "gcsguard.service", "gcsguard-gate.service"):
        assert (tmp_path / "etc" / "systemd" / "system" / unit).exists()
    # the example config names /etc paths and no upstream: check fails, the daemon is held back
    assert first.returncode == 1 and "not enabled until `gcsguard check` passes" in first.stdout
    assert mode(etc / "gcsguard.toml") == 0o640
    sysctl = (tmp_path / "etc" / "sysctl.d" / "90-gcsguard.conf").read_text()
    assert "max_dgram_qlen" in sysctl and "forward" not in sysctl     # the units switch forwarding
    opt = tmp_path / "opt" / "gcsguard"
    assert (opt / "boot.nft").read_text().startswith("# gcsguard boot table")
    for unit in (tmp_path / "etc" / "systemd" / "system").iterdir():  # every Documentation= exists
        for link in re.findall(r"Documentation=file:///opt/gcsguard/(\S+)", unit.read_text()):
            assert (opt / link).exists(), (unit.name, link)
    command = tmp_path / "usr" / "local" / "bin" / "gcsguard"
    assert os.readlink(command) == str(opt / "venv" / "bin" / "gcsguard")

    # the station edits its config; an upgrade keeps it, and the key, and enables forwarding
    config = etc / "gcsguard.toml"
    text = config.read_text().replace('"/etc/gcsguard', f'"{etc}').replace(
        "upstreams = []", 'upstreams = ["192.0.2.53:53"]')
    config.write_text(text)
    key = (etc / "keys" / "log-signing.key").read_bytes()
    (tmp_path / "var" / "log" / "gcsguard" / "events-2026-11-26.000.jsonl").write_text("evidence\n")
    second = gcsguard("install", "--root", root, "--no-venv")
    assert second.returncode == 0, second.stdout + second.stderr
    assert config.read_text() == text and (etc / "keys" / "log-signing.key").read_bytes() == key

    gone = gcsguard("uninstall", "--root", root)
    assert gone.returncode == 0
    assert not (tmp_path / "etc" / "systemd" / "system" / "gcsguard.service").exists()
    assert not (tmp_path / "etc" / "sysctl.d" / "90-gcsguard.conf").exists()
    assert not opt.exists() and not os.path.lexists(command)
    assert config.read_text() == text and (etc / "keys" / "log-signing.key").exists()
    assert (tmp_path / "var" / "log" / "gcsguard" / "events-2026-11-26.000.jsonl").exists()
    purged = gcsguard("uninstall", "--root", root, "--purge")
    assert purged.returncode == 0 and not etc.exists()
    assert not (tmp_path / "var" / "log" / "gcsguard").exists()


def test_install_builds_the_venv_and_the_installed_command_runs(tmp_path):
    done = gcsguard("install", "--root", str(tmp_path))
    assert done.returncode == 1 and "installed gcsguard into" in done.stdout    # 1: config unchecked
    installed = tmp_path / "opt" / "gcsguard" / "venv" / "bin" / "gcsguard"
    version = subprocess.run([str(installed), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("gcsguard ")
