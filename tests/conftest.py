"""Shared fixtures: a controllable clock, a signing key, and a runnable config."""
from __future__ import annotations

import os
import socket
import textwrap

import pytest
from prometheus_client import CollectorRegistry

from appliance.events.clock import Clock
from appliance.evlog import signing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_LISTS = [os.path.join(REPO, "blocklists", d) for d in ("vendors", "sdk", "bypass")]


class FakeTime:
    """Wall and monotonic time that tests move by hand."""

    def __init__(self, start: float = 1_795_000_000.0) -> None:
        self.now = start
        self.mono = 1_000_000_000

    def wall(self) -> float:
        return self.now

    def mono_ns(self) -> int:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += int(seconds * 1e9)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def clock(fake_time: FakeTime) -> Clock:
    return Clock(wall=fake_time.wall, mono_ns=fake_time.mono_ns, boot_id="test-boot",
                 clock_state=lambda: "synced")


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def keypair(tmp_path):
    key, pub = str(tmp_path / "keys" / "log.key"), str(tmp_path / "keys" / "log.pub")
    signing.generate_key(key, pub)
    return signing.load_private(key), pub


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_file(directory, extra: str = "", block: list[str] | None = None, port: int | None = None,
                dns: str = "listen = []", firewall: str = "enabled = false") -> str:
    """Write a config for a daemon that lives entirely under `directory`; returns its path.

    The firewall is off by default: these daemons run in the host's namespace, where
    no rule of ours may ever be loaded (the lab's daemon turns it on in its netns)."""
    key = directory / "keys" / "log.key"
    if not key.exists():
        signing.generate_key(str(key), str(directory / "keys" / "log.pub"))
    blocks = ", ".join(f'"{b}"' for b in (block if block is not None else SHIPPED_LISTS))
    path = directory / "gcsguard.toml"
    path.write_text(textwrap.dedent(f"""\
        [appliance]
        station = "test-station"
        state_dir = "state"
        [lists]
        block = [{blocks}]
        [log]
        directory = "log"
        signing_key_file = "keys/log.key"
        checkpoint_interval = 0.5
        [events]
        socket = "events.sock"
        drop_report_interval = 0.5
        [metrics]
        listen = ["127.0.0.1:{port or free_port()}"]
        [firewall]
        """) + textwrap.dedent(firewall) + "\n[dns]\n" + textwrap.dedent(dns) + "\n"
        + textwrap.dedent(extra))
    return str(path)


@pytest.fixture
def write_config(tmp_path):
    return lambda *args, **kwargs: config_file(tmp_path, *args, **kwargs)


@pytest.fixture
def daemons():
    """Start appliance processes with daemons(config[, command]); all are killed afterwards."""
    from tests.helpers import Daemon, stop_all
    started: list = []

    def start(config: str, command: str = "run"):
        started.append(Daemon(config, command))
        return started[-1]
    yield start
    stop_all(started)


@pytest.fixture(scope="session")
def lab():
    """The lab, built once per session; tests switch modes by reload (lab.reload(mode=...)).

    Its directory is not under pytest's (0700): the gate runs as its own user and must be
    able to read the config, the lists and the learned addresses."""
    import shutil
    import tempfile
    from appliance.lab.lab import Lab
    directory = tempfile.mkdtemp(prefix="gcsguard-lab-")
    lab = Lab(directory, prefix=f"gct{os.getpid() % 100000}")
    lab.up()
    try:
        yield lab
    finally:
        problems = lab.down()
        shutil.rmtree(directory, ignore_errors=True)
        assert not problems, problems


@pytest.fixture
def lab_dir():
    """A directory for a lab of the test's own, readable by the gate's user (see `lab`)."""
    import shutil
    import tempfile
    directory = tempfile.mkdtemp(prefix="gcsguard-lab-")
    os.chmod(directory, 0o750)
    yield os.path.join(directory, "lab")
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def scratch_netns():
    """An empty network namespace of our own, for nft commands that must never touch the host's."""
    import subprocess
    name = f"gcs-scratch-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def in_netns(ns: str, *cmd: str, check: bool = True, **kwargs):
    """Run a command inside a namespace; output as text."""
    import subprocess
    kwargs.setdefault("timeout", 60)
    result = subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True,
                            **kwargs)
    if check and result.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result
