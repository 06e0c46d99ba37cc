"""A command's events: through the daemon's socket when it listens, else into the log."""
import json
import os
import socket

from appliance.config.schema import Config, EventsSection, LogSection
from appliance.events.clock import Clock
from appliance.events.event import Event
from appliance.evlog import chain, signing
from appliance.evlog.record import record


def test_through_the_daemon_or_straight_into_the_log(tmp_path):
    key = str(tmp_path / "log.key")
    signing.generate_key(key, str(tmp_path / "log.pub"))
    config = Config(log=LogSection(directory=str(tmp_path / "log"), signing_key_file=key),
                    events=EventsSection(socket=str(tmp_path / "events.sock")))
    events = [Event("verify.check", Clock().stamp(), reason=f"c{i}") for i in range(30)]
    assert record(config, events) == f"in {tmp_path / 'log'}"              # no daemon
    lines = [json.loads(line) for name in chain.log_files(str(tmp_path / "log"))
             for line in open(tmp_path / "log" / name)]
    assert [r["reason"] for r in lines] == [f"c{i}" for i in range(30)]

    daemon = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    daemon.bind(config.events.socket)
    daemon.settimeout(5)
    assert record(config, events[:3]) == "by the daemon"
    assert [json.loads(daemon.recv(65536))["reason"] for _ in range(3)] == ["c0", "c1", "c2"]
    daemon.close()


def test_files_written_for_a_stopped_daemon_stay_the_daemons(tmp_path):
    key = str(tmp_path / "log.key")
    signing.generate_key(key, str(tmp_path / "log.pub"))
    log = tmp_path / "log"
    log.mkdir()
    os.chown(log, 64501, 64501)                  # the daemon's user owns its log directory
    config = Config(log=LogSection(directory=str(log), signing_key_file=key),
                    events=EventsSection(socket=str(tmp_path / "none.sock")))
    record(config, [Event("firewall.opened", Clock().stamp(), action="error")])
    owners = {(p.stat().st_uid, p.stat().st_gid) for p in log.iterdir() if p.is_file()}
    assert owners == {(64501, 64501)}
