"""sd_notify: READY=1 once serving, WATCHDOG=1 at half WatchdogSec, STOPPING=1 at the end."""
import os
import signal
import socket
import subprocess
import sys
import time

from appliance.sdnotify import credential, notify, watchdog_interval


def test_notify_and_watchdog_interval(tmp_path):
    assert notify("READY=1", {}) is False                       # not under systemd: nothing
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        assert notify("READY=1", {"NOTIFY_SOCKET": path})
        assert s.recv(100) == b"READY=1"
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None   # not us
    assert watchdog_interval({}) is None


def test_the_daemon_tells_systemd_it_is_ready_and_alive(write_config, tmp_path):
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        s.settimeout(15)
        env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
        daemon = subprocess.Popen([sys.executable, "-m", "appliance", "run", "-c", write_config()],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            got = [s.recv(100)]
            deadline = time.monotonic() + 5
            while got.count(b"WATCHDOG=1") < 3 and time.monotonic() < deadline:
                got.append(s.recv(100))
            assert got[0] == b"READY=1" and got.count(b"WATCHDOG=1") >= 3
            daemon.send_signal(signal.SIGTERM)
            while (message := s.recv(100)) == b"WATCHDOG=1":
                pass
            assert message == b"STOPPING=1"
        finally:
            daemon.kill() if daemon.poll() is None else None
            daemon.wait(timeout=10)


def test_credentials_from_systemd(tmp_path):
    (tmp_path / "log-signing.key").write_text("k")
    assert credential("log-signing.key", {"CREDENTIALS_DIRECTORY": str(tmp_path)}) == \
        str(tmp_path / "log-signing.key")
    assert credential("log-signing.key", {}) is None
    assert credential("other", {"CREDENTIALS_DIRECTORY": str(tmp_path)}) is None
