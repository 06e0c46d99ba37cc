"""The appliance process end to end: events in, signed log out, metrics, reloads."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error

import pytest

from appliance.events.clock import Clock
from appliance.events.event import Event
from appliance.events.socket import EventSender
from appliance.evlog import signing
from appliance.evlog.verify import verify

from .helpers import metric


def test_events_reloads_and_a_verifiable_log(write_config, tmp_path, daemons):
    extra = tmp_path / "extra.list"
    extra.write_text("# vendor: Test\n# category: vendor\nfirst.example\n")
    config = write_config(block=[str(extra)])
    d = daemons(config)
    d.wait_ready()
    started = d.wait_for(lambda r: r["type"] == "config.loaded", "config.loaded")[0]
    assert started["details"]["sha256"] == hashlib.sha256(open(config, "rb").read()).hexdigest()

    sender = EventSender(str(tmp_path / "events.sock"))
    assert sender.send(Event(type="verify.run", stamp=Clock().stamp(), reason="pass",
                             source="verify"))                # a command's record, from root
    d.wait_for(lambda r: r["type"] == "verify.run" and r["source"] == "verify", "event from the socket")

    extra.write_text("# vendor: Test\n# category: vendor\nfirst.example\nsecond.example\n")
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for(lambda r: r["type"] == "lists.loaded" and
                       r["details"]["files"][0]["entries"] == 2, "reloaded lists")
    assert metric(d.scrape(), "gcsguard_config_reloads_total", '{result="success"}') == 1

    good = open(config).read()
    with open(config, "a") as f:
        f.write("[bogus]\n")
    d.proc.send_signal(signal.SIGHUP)
    rejected = d.wait_for(lambda r: r["type"] == "config.rejected", "config.rejected")[0]
    assert any("[bogus]: unknown section" in e for e in rejected["details"]["errors"])
    text = d.scrape()
    assert metric(text, "gcsguard_config_last_reload_successful") == 0
    label = f"{tmp_path.name}/extra.list"
    assert metric(text, "gcsguard_list_entries",
                  f'{{category="vendor",kind="block",list="{label}",vendor="Test"}}') == 2
    open(config, "w").write(good)

    assert d.stop() == 0
    rs = d.log_records()
    assert [r["type"] for r in rs][0] == "appliance.started" and rs[-1]["type"] == "appliance.stopped"
    assert [r["n"] for r in rs] == list(range(1, len(rs) + 1))
    report = verify(os.path.join(d.dir, "log"), signing.load_public(str(tmp_path / "keys" / "log.pub")))
    assert report.ok, report.problems


def test_metrics_are_promtool_clean(write_config, tmp_path, daemons):
    d = daemons(write_config())
    d.wait_ready()
    text = d.scrape()
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert metric(text, "gcsguard_build_info", '{python="%s",station="test-station",version="0.1.0"}' %
                  ".".join(map(str, sys.version_info[:3]))) == 1               # the configured station
    assert "_created" not in text
    d.stop()


def test_kill_then_restart_continues_the_chain(write_config, tmp_path, daemons):
    config = write_config()
    first = daemons(config)
    first.wait_ready()
    first.wait_for(lambda r: r["type"] == "lists.loaded", "lists.loaded")
    time.sleep(0.7)                                       # let a checkpoint happen
    first.stop(signal.SIGKILL)
    second = daemons(config)
    second.wait_ready()
    assert second.stop() == 0
    rs = second.log_records()
    assert [r["type"] for r in rs].count("appliance.started") == 2
    assert [r["n"] for r in rs] == list(range(1, len(rs) + 1))
    assert verify(os.path.join(second.dir, "log"),
                  signing.load_public(str(tmp_path / "keys" / "log.pub"))).ok


def test_basic_auth_on_metrics(write_config, tmp_path, daemons):
    (tmp_path / "pass").write_text("s3cret\n")
    config = write_config()
    text = open(config).read().replace("[metrics]\n", '[metrics]\nbasic_auth_user = "prom"\n'
                                       'basic_auth_password_file = "pass"\n')
    open(config, "w").write(text)
    d = daemons(config)
    d.wait_ready()
    with pytest.raises(urllib.error.HTTPError) as e:
        d.scrape()
    assert e.value.code == 401
    with pytest.raises(urllib.error.HTTPError):
        d.scrape("prom:wrong")
    assert "gcsguard_build_info" in d.scrape("prom:s3cret")
    d.stop()
    assert not any("s3cret" in json.dumps(r) for r in d.log_records())


def test_metrics_over_tls(write_config, tmp_path, daemons):
    from appliance.lab.certs import write_lab_pki
    pki = write_lab_pki(str(tmp_path), addresses=("127.0.0.1",))
    config = write_config()
    text = open(config).read().replace("[metrics]\n", f'[metrics]\ntls_cert_file = "{pki["cert"]}"\n'
                                       f'tls_key_file = "{pki["key"]}"\n')
    open(config, "w").write(text)
    d = daemons(config)
    url = f"https://127.0.0.1:{d.port}/metrics"
    curl = ["curl", "-sS", "--max-time", "2", "--cacert", pki["ca"], url]
    deadline = time.monotonic() + 15
    while subprocess.run(curl, capture_output=True).returncode and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "gcsguard_build_info" in subprocess.run(curl, capture_output=True, text=True).stdout
    plain = subprocess.run(["curl", "-sS", "--max-time", "2", url.replace("https", "http")],
                           capture_output=True, text=True)
    assert "gcsguard_build_info" not in plain.stdout            # no cleartext on a TLS endpoint
    d.stop()


def test_refuses_to_start_with_a_broken_block_list(write_config, tmp_path):
    broken = tmp_path / "broken.list"
    broken.write_text("no header here\n")
    r = subprocess.run([sys.executable, "-m", "appliance", "run", "-c", write_config(block=[str(broken)])],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "header lacks" in r.stderr


def test_a_busy_address_is_a_clear_error_and_logged(write_config, tmp_path):
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        config = write_config(dns=f'listen = ["127.0.0.1:{port}"]\nupstreams = ["192.0.2.53:53"]')
        r = subprocess.run([sys.executable, "-m", "appliance", "run", "-c", config],
                           capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "cannot start" in r.stderr and "Address already in use" in r.stderr
    from appliance.review.query import records
    stopped = [x for x in records(str(tmp_path / "log")) if x["type"] == "appliance.stopped"]
    assert stopped and stopped[-1]["reason"] == "start-failed"
