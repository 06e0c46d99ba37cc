"""Running the real appliance in tests: processes, their logs and metrics, and dig."""
from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from appliance.review.query import records


class Daemon:
    def __init__(self, config: str, command: str = "run") -> None:
        self.config = config
        text = open(config).read()
        self.port = int(re.search(r'listen = \["127.0.0.1:(\d+)"\]', text).group(1))
        self.dir = os.path.dirname(config)
        self.proc = subprocess.Popen([sys.executable, "-m", "appliance", command, "-c", config],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def scrape(self, auth: str | None = None) -> str:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/metrics")
        if auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
        with urllib.request.urlopen(request, timeout=2) as r:
            return r.read().decode()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stdout.read()
            try:
                self.scrape()
                return
            except urllib.error.HTTPError:
                return                          # answering (with 401): up
            except OSError:
                time.sleep(0.1)
        raise AssertionError("daemon did not come up")

    def log_records(self):
        return list(records(os.path.join(self.dir, "log")))

    def wait_for(self, predicate, what: str, timeout: float = 10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in self.log_records() if predicate(r)]
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"no {what} in the log")

    def stop(self, sig=signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=10)
        finally:
            self.proc.stdout.close()



def metric(text: str, name: str, labels: str = "") -> float:
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    assert m, f"{name}{labels} not exported"
    return float(m.group(1))



class Dig:
    """One dig answer: status, flags, and the records of each section as text lines."""

    def __init__(self, output: str) -> None:
        self.output = output
        m = re.search(r"status: (\w+)", output)
        self.status = m.group(1) if m else "NO ANSWER"
        m = re.search(r";; flags: ([\w ]*);", output)
        self.flags = set(m.group(1).split()) if m else set()
        self.edns = re.search(r"; EDNS: version: 0, flags:([\w ]*); udp: (\d+)", output)
        self.sections: dict[str, list[str]] = {}
        current = None
        for line in output.splitlines():
            m = re.match(r";; (\w+) SECTION:", line)
            if m:
                current = self.sections.setdefault(m.group(1), [])
            elif current is not None and line and not line.startswith(";;"):
                current.append(line)
            elif not line:
                current = None

    @property
    def answer(self) -> list[str]:
        return self.sections.get("ANSWER", [])

    def __repr__(self) -> str:
        return self.output


def dig(port: int, *args: str, server: str = "127.0.0.1", source: str | None = None) -> Dig:
    cmd = ["dig", f"@{server}", "-p", str(port), "+tries=1", "+time=3", *args]
    if source:
        cmd += ["-b", source]
    return Dig(subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout)


def stop_all(daemons) -> None:
    for d in daemons:                          # never leave a process behind
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


class RecordingBus:
    """A bus that keeps what is emitted, for unit tests of producers (pure logic only)."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def emit(self, type, **fields):
        self.events.append({"type": type, **fields})


# A webhook receiver to run in a lab namespace: python3 -c WEBHOOK_RECEIVER OUT HOST
# appends each POST body to OUT, one per line; webhook_posts(OUT) reads them back.
from appliance.lab.webhook import WEBHOOK_RECEIVER, webhook_posts  # noqa: E402,F401


def judge_of(lists, mode: str = "vendor-block", allow: tuple[str, ...] = (), learned=None,
             aliases=None):
    """A judge over lists built in the test (the policy's other parts at their defaults)."""
    import dataclasses

    from appliance.config import Config
    from appliance.policy import Judge, Policy
    from appliance.policy.allow import parse_allow
    config = Config()
    config = dataclasses.replace(config, firewall=dataclasses.replace(config.firewall, mode=mode))
    policy = Policy(config, lists, (), tuple(parse_allow(a) for a in allow))
    return Judge(policy, learned, aliases)


def with_extension(record: bytes, kind: int, data: bytes) -> bytes:
    """A ClientHello record with one more extension (a GREASE ECH, a crafted server_name),
    its three lengths fixed."""
    import struct
    body = bytearray(record[9:])
    at = 34 + 1 + body[34]                                       # version, random, session id
    at += 2 + struct.unpack_from("!H", body, at)[0]               # cipher suites
    at += 1 + body[at]                                            # compression methods
    total = struct.unpack_from("!H", body, at)[0]
    body[at:at + 2] = struct.pack("!H", total + 4 + len(data))
    body += struct.pack("!HH", kind, len(data)) + data
    return (b"\x16" + record[1:3] + struct.pack("!H", len(body) + 4)
            + b"\x01" + struct.pack("!I", len(body))[1:] + bytes(body))


class CollectingSink:
    """A bus sink that keeps what it is handed (tests read `events` or the bus's queue)."""

    def __init__(self) -> None:
        self.events: list = []
        self.closed = False

    async def handle(self, events) -> None:
        self.events += events

    async def close(self) -> None:
        self.closed = True
