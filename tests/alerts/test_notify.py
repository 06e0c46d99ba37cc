"""Notifiers against real receivers on loopback: Debian's Alertmanager, an HTTP server that
checks the HMAC, a UDP syslog socket; and a dead receiver retried, then given up."""
import asyncio
import hashlib
import hmac
import http.server
import json
import socket
import subprocess
import threading
import time
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from appliance.alerts.notify import Alertmanager, Dispatcher, Syslog, Webhook
from appliance.alerts.rules import Notification, Rule
from appliance.config.schema import Secret
from tests.conftest import free_port

RULE = Rule("vendor-egress", {"type": ("egress.blocked",)}, ("device_name",), severity="warning")


def notification(status="firing", ends_at=None):
    return Notification(RULE, {"device_name": "ctl-03"}, status, 2, time.time() - 5, ends_at,
                        "ctl-03 tried DJI")


@pytest.fixture
def alertmanager(tmp_path):
    port = free_port()
    (tmp_path / "am.yml").write_text("route: {receiver: none}\nreceivers: [{name: none}]\n")
    process = subprocess.Popen(["prometheus-alertmanager", f"--config.file={tmp_path / 'am.yml'}",
                                f"--storage.path={tmp_path / 'am'}",
                                f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/-/ready", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=10)


def active(url):
    with urllib.request.urlopen(f"{url}/api/v2/alerts?active=true&silenced=false", timeout=3) as r:
        return [a for a in json.load(r) if a["labels"]["alertname"] == "vendor-egress"]


def test_alertmanager_receives_and_resolves(alertmanager):
    notifier = Alertmanager(alertmanager, "station-1")
    notifier.send(notification())
    alert, = active(alertmanager)
    assert alert["labels"] == {"alertname": "vendor-egress", "severity": "warning",
                               "station": "station-1", "device_name": "ctl-03"}
    assert alert["annotations"]["summary"] == "ctl-03 tried DJI"
    notifier.send(notification("resolved", ends_at=time.time()))
    deadline = time.monotonic() + 5
    while active(alertmanager) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert active(alertmanager) == []


def test_webhook_body_is_signed(tmp_path):
    got = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            got.append((self.headers.get("X-Gcsguard-Signature"),
                        self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass
    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        Webhook(f"http://127.0.0.1:{server.server_port}/", Secret("k3y", "test"), "station-1").send(
            notification())
    finally:
        server.shutdown()
    signature, body = got[0]
    assert signature == "sha256=" + hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
    assert json.loads(body)["alert"] == "vendor-egress" and json.loads(body)["status"] == "firing"


def test_syslog_is_rfc5424():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(2)
        Syslog(f"127.0.0.1:{receiver.getsockname()[1]}", "station-1").send(notification())
        message = receiver.recv(4096).decode()
    assert message.startswith("<132>1 ")                           # local0.warning, version 1
    assert " station-1 gcsguard - ALERT [gcsguard@32473 alert=\"vendor-egress\" status=\"firing\"" in message
    assert message.endswith("ctl-03 tried DJI")


def test_a_dead_receiver_is_retried_then_given_up_without_blocking():
    failures, registry = [], CollectorRegistry()
    dead = Webhook(f"http://127.0.0.1:{free_port()}/", None, "station-1")
    dispatcher = Dispatcher([dead], registry, lambda *a: failures.append(a), backoff=(0.01, 0.01))

    async def run():
        task = asyncio.create_task(dispatcher.run())
        started = time.monotonic()
        dispatcher.submit(notification())                       # returns at once
        assert time.monotonic() - started < 0.01
        for _ in range(200):
            await asyncio.sleep(0.02)
            if failures:
                break
        task.cancel()
    asyncio.run(run())
    count = lambda result: registry.get_sample_value("gcsguard_alert_notifications_total",  # noqa: E731
                                                     {"notifier": "webhook", "result": result})
    assert count("failed") == 3 and count("dropped") == 1 and count("sent") == 0
    assert failures and failures[0][0] == "webhook"
