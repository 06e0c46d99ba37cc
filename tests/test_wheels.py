"""The offline bundle: built here (from PyPI), then installed in a network namespace with no
network at all, from the unpacked source with a bare python3: no registry is reachable, and
pip takes only files whose hashes the bundle lists."""
import os
import shutil
import subprocess
import sys
import tarfile

from appliance.wheels import build, pins
from tests.conftest import in_netns

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def test_pins_are_what_runs_here():
    pinned = pins()
    assert pinned["mitmproxy"] and pinned["dnslib"] and "gcsguard" not in pinned
    assert "pytest" not in pinned                      # test extras are not the station's


def test_an_offline_install_from_the_bundle(tmp_path, scratch_netns):
    bundle = tmp_path / "bundle"
    assert build(str(bundle), ("x86_64" if os.uname().machine == "x86_64" else "aarch64",),
                 (PYTHON,), say=lambda _: None) == []
    requirements = (bundle / "requirements.txt").read_text().splitlines()
    assert all("--hash=sha256:" in line for line in requirements), requirements
    with tarfile.open(bundle / "gcsguard-src.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    source, root = tmp_path / "gcsguard", tmp_path / "root"
    assert not (source / ".venv").exists() and (source / "blocklists").is_dir()
    python = shutil.which(f"python{PYTHON}", path="/usr/bin") or sys.executable
    # no route, no resolver: only the namespace's loopback, and that down
    assert "inet " not in in_netns(scratch_netns, "ip", "-4", "addr").stdout
    done = in_netns(scratch_netns, python, "-m", "appliance.install", "--root", str(root),
                    "--wheels", str(bundle), cwd=str(source), check=False, timeout=600)
    assert done.returncode in (0, 1), done.stdout + done.stderr     # 1: the example config checks
    assert f"from {bundle}, offline" in done.stdout, done.stdout
    installed = root / "opt" / "gcsguard" / "venv" / "bin" / "gcsguard"
    version = subprocess.run([str(installed), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("gcsguard ")
    assert (root / "etc" / "gcsguard" / "keys" / "log-signing.key").exists()

    tampered = bundle / "wheels" / next(n for n in os.listdir(bundle / "wheels") if n.startswith("dnslib"))
    tampered.write_bytes(tampered.read_bytes() + b"\0")               # a wheel altered in transit
    again = in_netns(scratch_netns, python, "-m", "appliance.install", "--root", str(tmp_path / "r2"),
                     "--wheels", str(bundle), cwd=str(source), check=False, timeout=600)
    assert again.returncode != 0 and "THESE PACKAGES DO NOT MATCH THE HASHES" in again.stderr
