"""`gcsguard install | uninstall` into a scratch root: layout, modes, nothing of the station's
ever overwritten, forwarding only once the config checks."""
import os
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
    # the example config names /etc paths and no upstream: check fails, forwarding stays off
    assert first.returncode == 1 and "forwarding stays OFF" in first.stdout
    assert not (tmp_path / "etc" / "sysctl.d" / "90-gcsguard.conf").exists()

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
    assert "ip_forward = 1" in (tmp_path / "etc" / "sysctl.d" / "90-gcsguard.conf").read_text()

    gone = gcsguard("uninstall", "--root", root)
    assert gone.returncode == 0
    assert not (tmp_path / "etc" / "systemd" / "system" / "gcsguard.service").exists()
    assert not (tmp_path / "etc" / "sysctl.d" / "90-gcsguard.conf").exists()
    assert config.read_text() == text and (etc / "keys" / "log-signing.key").exists()
    assert (tmp_path / "var" / "log" / "gcsguard" / "events-2026-11-26.000.jsonl").exists()


def test_install_builds_the_venv_and_the_installed_command_runs(tmp_path):
    done = gcsguard("install", "--root", str(tmp_path))
    assert done.returncode == 1 and "installed gcsguard into" in done.stdout    # 1: config unchecked
    installed = tmp_path / "opt" / "gcsguard" / "venv" / "bin" / "gcsguard"
    version = subprocess.run([str(installed), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("gcsguard ")
