"""rsyslog's configurations, as `gcsguard ship` writes them, are accepted by the real rsyslogd,
and carry a station's log unchanged (both ends on loopback)."""
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from appliance.config import load_config
from appliance.ship.rsyslog import collector_config, station_config
from appliance.ship.stats import latest
from tests.conftest import free_port as free_port_number
from tests.network.test_links import wait_for

pytestmark = pytest.mark.skipif(shutil.which("rsyslogd") is None, reason="rsyslog is not installed")


def config(tmp_path, station="station-7", extra=""):
    path = tmp_path / "gcsguard.toml"
    path.write_text(f'[appliance]\nstation = "{station}"\nstate_dir = "{tmp_path}/state"\n'
                    f'[log]\ndirectory = "{tmp_path}/log"\n[ship]\ncollector = "127.0.0.1:{{port}}"\n{extra}')
    return path


def rsyslogd_check(tmp_path, dropin: str, work: str) -> subprocess.CompletedProcess:
    (tmp_path / "dropin.conf").write_text(dropin)
    (tmp_path / "master.conf").write_text(f'global(workDirectory="{work}")\n'
                                          f'include(file="{tmp_path / "dropin.conf"}")\n')
    return subprocess.run(["rsyslogd", "-N1", "-f", str(tmp_path / "master.conf")], capture_output=True, text=True)


def pki(directory) -> dict[str, str]:
    """A CA, the collector's certificate (collector.lab) and the station's, by openssl."""
    def run(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
        "-subj", "/CN=gcsguard test CA", "-keyout", "ca.key", "-out", "ca.pem")
    for name in ("collector", "station"):
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={name}.lab",
            "-addext", f"subjectAltName=DNS:{name}.lab", "-keyout", f"{name}.key", "-out", f"{name}.csr")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-copy_extensions", "copy", "-out", f"{name}.pem")
    return {"ca_file": f"{directory}/ca.pem", "cert_file": f"{directory}/collector.pem",
            "key_file": f"{directory}/collector.key"}


def tls_settings(directory) -> str:
    return (f'tls = true\nca_file = "{directory}/ca.pem"\ncert_file = "{directory}/station.pem"\n'
            f'key_file = "{directory}/station.key"\ncollector_name = "collector.lab"\n')


def test_both_configs_are_valid_rsyslog_with_and_without_tls(tmp_path):
    collector_tls = pki(tmp_path)
    path = config(tmp_path, extra=tls_settings(tmp_path))
    path.write_text(path.read_text().replace("{port}", "2514"))
    os.makedirs(tmp_path / "work")
    for text in (station_config(load_config(str(path))),
                 collector_config("127.0.0.1:2514", str(tmp_path / "copies")),
                 collector_config("127.0.0.1:2514", str(tmp_path / "copies"), collector_tls)):
        checked = rsyslogd_check(tmp_path, text, str(tmp_path / "work"))
        assert checked.returncode == 0, checked.stderr
    assert 'tls="on"' in station_config(load_config(str(path)))
    if os.path.exists("/etc/rsyslog.conf"):      # beside the distribution's own configuration
        (tmp_path / "dropin.conf").write_text(station_config(load_config(str(path))))
        (tmp_path / "debian.conf").write_text(f'include(file="/etc/rsyslog.conf")\n'
                                              f'include(file="{tmp_path / "dropin.conf"}")\n')
        checked = subprocess.run(["rsyslogd", "-N1", "-f", str(tmp_path / "debian.conf")],
                                 capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr


def test_a_station_name_rsyslog_cannot_carry_is_refused(tmp_path):
    path = config(tmp_path, station="district 7/../x")
    path.write_text(path.read_text().replace("{port}", "2514"))
    with pytest.raises(ValueError, match="station"):
        station_config(load_config(str(path)))


@pytest.mark.parametrize("tls,peer", [(False, ""), (True, "collector.lab"), (True, "impostor.lab")],
                         ids=["relp", "relp-tls", "relp-tls-wrong-collector"])
def test_the_copy_is_the_station_bytes_under_the_station_names(tmp_path, tls, peer):
    """Real rsyslogd at both ends: lines with every kind of JSON escape and UTF-8 arrive
    byte for byte, in their own files; a file name outside the log's is not written. With
    TLS, a collector whose certificate does not bear the expected name gets nothing."""
    collector_tls = pki(tmp_path) if tls else None
    extra = tls_settings(tmp_path).replace("collector.lab", peer) if tls else ""
    path, free_port = config(tmp_path, extra=extra), free_port_number()
    onward = OctetCounted() if not tls else None          # another engine, fed by the collector
    path.write_text(path.read_text().replace("{port}", str(free_port)))
    log, copies, work = tmp_path / "log", tmp_path / "copies", tmp_path / "state" / "ship"
    for d in (log, work, tmp_path / "cwork"):
        os.makedirs(d)
    records = [json.dumps({"n": n, "text": "é \u2028 \\ \" \t \u0001 ünï", "pad": "x" * n * 50},
                          ensure_ascii=n % 2 == 0) for n in range(1, 200)]
    (log / "events-2026-11-30.000.jsonl").write_text("".join(r + "\n" for r in records))
    (log / "checkpoints.jsonl").write_text('{"n":199}\n')
    (log / "other.jsonl").write_text('{"not":"the log"}\n')
    procs = []
    try:
        for name, text, wd in (("collector", collector_config(f"127.0.0.1:{free_port}", str(copies), collector_tls,
                                                          onward.address if onward else ""), tmp_path / "cwork"),
                               ("station", station_config(load_config(str(path)), stats_interval=1), work)):
            (tmp_path / f"{name}.conf").write_text(text)
            (tmp_path / f"{name}-master.conf").write_text(
                f'global(workDirectory="{wd}")\ninclude(file="{tmp_path / name}.conf")\n')
            procs.append(subprocess.Popen(["rsyslogd", "-n", "-f", str(tmp_path / f"{name}-master.conf"),
                                           "-i", str(tmp_path / f"{name}.pid")],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(0.5)
        target = copies / "station-7" / "events-2026-11-30.000.jsonl"
        if peer == "impostor.lab":
            time.sleep(5)
            assert not target.exists()
            return
        assert wait_for(lambda: target.exists() and target.read_bytes().count(b"\n") == 199, timeout=20)
        assert target.read_bytes() == (log / "events-2026-11-30.000.jsonl").read_bytes()
        assert (copies / "station-7" / "checkpoints.jsonl").read_bytes() == b'{"n":199}\n'
        if onward:      # RFC 5424, octet-counted: the station, the file, the line as written
            assert wait_for(lambda: len(onward.frames) >= 200, timeout=10)
            # <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG, each frame ending in LF
            parsed = [f.split(b" ", 7) for f in onward.frames]
            assert all(p[0].startswith(b"<") and p[0].endswith(b">1") for p in parsed)
            assert {(p[2], p[3]) for p in parsed} == {(b"station-7", b"gcsguard")}
            lines = b"".join(p[7] for p in parsed if p[5] == b"events-2026-11-30.000.jsonl")
            assert lines == (log / "events-2026-11-30.000.jsonl").read_bytes()
        assert sorted(os.listdir(copies / "station-7")) == ["checkpoints.jsonl", "events-2026-11-30.000.jsonl"]
        # what /metrics shows of it: rsyslog's own statistics, written every second here
        assert wait_for(lambda: (latest(str(work / "stats.json")) or ({},))[0].get("processed", 0) >= 201,
                        timeout=10)
        assert latest(str(work / "stats.json"))[0]["failed"] == 0
    finally:
        if onward:
            onward.close()
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:   # rsyslog retrying a refused TLS session ignores SIGTERM
                assert peer == "impostor.lab"
                p.kill()
                p.wait(timeout=10)


class OctetCounted:
    """A TCP receiver of RFC 6587 octet-counted frames ("LEN SP MSG"), as Vector, Fluent Bit
    or Promtail take them."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        buffer = b""
        while chunk := conn.recv(65536):
            buffer += chunk
            while b" " in buffer:
                length, rest = buffer.split(b" ", 1)
                if len(rest) < int(length):
                    break
                self.frames.append(rest[:int(length)])
                buffer = rest[int(length):]

    def close(self) -> None:
        self.server.close()
