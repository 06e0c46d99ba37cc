"""A controller app's egress techniques, replayed from the lab's controller with real clients.

Each attempt records three views: what the client saw, what the appliance logged
(its events), and what the simulated internet received (its hits). An attempt is
"blocked" only if the target received nothing; "allowed" only if it did.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..verify.checks import dig_answer
from .internet import ALLOWED, ALLOWED_V6, HARDCODED, HTTPDNS, PUBLIC_RESOLVER, VENDOR, VENDOR_V6
from .lab import Lab
from .topology import LAN_V4

DIG = ("dig", "+time=1", "+tries=1")
CURL = ("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "1.5")
CURL_ERRORS = {28: "no connection (timeout)", 7: "connection refused", 6: "name not resolved",
               35: "TLS handshake failed", 60: "certificate not trusted"}


@dataclass(frozen=True)
class Technique:
    key: str
    label: str
    command: tuple[str, ...]
    target: str                 # the address whose hits decide the outcome ("" = DNS answer decides)
    expect: dict[str, str]      # mode -> "blocked" | "allowed" | "redirected"
    service: str = ""           # only hits of this service count ("" = any)


def _all(outcome: str) -> dict[str, str]:
    return {"isolate": outcome, "vendor-block": outcome, "audit": outcome}


def techniques(ca: str) -> list[Technique]:
    vendor_audited = {"isolate": "blocked", "vendor-block": "blocked", "audit": "allowed"}
    return [
        Technique("vendor-name", "vendor name lookup (mydjiflight.dji.com)",
                  (*DIG, f"@{LAN_V4}", "mydjiflight.dji.com"), "", vendor_audited),
        Technique("cname-cloak", "CNAME-cloaked vendor (telemetry.allowed.example)",
                  (*DIG, f"@{LAN_V4}", "telemetry.allowed.example"), "", vendor_audited),
        Technique("vendor-ip", "hard-coded vendor IP, HTTPS", (*CURL, "-k", f"https://{VENDOR}/"),
                  VENDOR, vendor_audited),
        Technique("mqtt", "vendor MQTT (tcp/1883), hard-coded IP",
                  ("nc", "-z", "-w", "1", VENDOR, "1883"), VENDOR, vendor_audited, service="mqtt"),
        Technique("foreign-dns", "foreign DNS server (udp/53 to a public resolver)",
                  (*DIG, f"@{PUBLIC_RESOLVER}", "mydjiflight.dji.com"), PUBLIC_RESOLVER,
                  _all("redirected"), service="dns"),
        Technique("dot", "DNS over TLS (tcp/853)", (*DIG, "+tls", f"@{PUBLIC_RESOLVER}",
                                                     "www.allowed.example"),
                  PUBLIC_RESOLVER, _all("blocked"), service="dot"),
        Technique("doh", "DNS over HTTPS (public resolver address)",
                  (*DIG, "+https", f"@{PUBLIC_RESOLVER}", "www.allowed.example"),
                  PUBLIC_RESOLVER, _all("blocked"), service="doh"),
        Technique("httpdns", "HTTPDNS (GET /d?dn=, hard-coded IP)",
                  (*CURL, f"http://{HTTPDNS}/d?dn=mydjiflight.dji.com"), HTTPDNS, _all("blocked")),
        Technique("quic", "QUIC (udp/443) to an allowed site",
                  ("bash", "-c", f"printf 'quic-initial' | nc -u -w 1 {ALLOWED} 443"), ALLOWED,
                  _all("blocked"), service="quic"),
        Technique("ipv6", "IPv6 to an allowed site", (*CURL, f"http://[{ALLOWED_V6}]/"),
                  ALLOWED_V6, _all("blocked")),
        Technique("ipv6-vendor", "IPv6 to a vendor address", (*CURL, f"http://[{VENDOR_V6}]/"),
                  VENDOR_V6, _all("blocked")),
        Technique("unlisted", "a site not on the allowlist (hardcoded.allowed.example)",
                  (*CURL, "--cacert", ca, "https://hardcoded.allowed.example/"), HARDCODED,
                  {"isolate": "blocked", "vendor-block": "allowed", "audit": "allowed"}),
        Technique("allowed", "allowed site, by name (www.allowed.example)",
                  (*CURL, "--cacert", ca, "https://www.allowed.example/"), ALLOWED, _all("allowed")),
    ]


@dataclass
class Result:
    technique: Technique
    mode: str
    client: str                 # what the client saw, in a few words
    outcome: str                # blocked | allowed | redirected
    events: list[dict] = field(default_factory=list)
    hits: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome == self.technique.expect[self.mode]

    @property
    def appliance(self) -> str:
        """What the appliance said it did, from its own log records."""
        said = []
        for e in self.events:
            t, reason = e["type"], e.get("reason", "")
            if t == "dns.query" and e.get("action") in ("block", "log"):
                said.append(f"DNS {e['details'].get('verdict')} ({reason}, {e.get('vendor') or '?'})")
            elif t == "dns.bypass":
                said.append(f"DNS redirected from {e['details'].get('dst')}")
            elif t in ("tls.decision", "http.decision", "tcp.decision") and e.get("action") != "allow":
                said.append(f"gate {'refused' if e['action'] == 'block' else 'logged'}: {reason}"
                            + (f" ({e['name']})" if e.get("name") else ""))
            elif t in ("egress.blocked", "egress.audit"):
                said.append(f"{'dropped' if t == 'egress.blocked' else 'logged'}: {reason}"
                            + (f" ({e['name']})" if e.get("name") else ""))
        return "; ".join(dict.fromkeys(said)) or "-"


def client_summary(technique: Technique, returncode: int, stdout: str, stderr: str) -> str:
    if technique.command[0] == "dig":
        if returncode:
            return "no answer (timeout)"
        status, answers = dig_answer(stdout)
        return f"{status} {' '.join(answers[:2])}".strip()
    if technique.command[0] == "curl":
        return f"HTTP {stdout}" if returncode == 0 else CURL_ERRORS.get(returncode,
                                                                        f"failed (curl {returncode})")
    return "sent" if technique.key == "quic" else ("connected" if returncode == 0 else "failed")


def run_one(lab: Lab, technique: Technique, settle: float = 0.4) -> Result:
    mode = lab.settings["mode"]
    last = max((e["n"] for e in lab.events()), default=0)
    started = time.time()
    proc = lab.run("ctl", *technique.command, timeout=20)
    time.sleep(settle)                    # NFLOG batches, the log sink's batch
    hits = [h for h in lab.hits(after=started) if h["addr"] == technique.target
            and (not technique.service or h["service"] == technique.service)]
    client = client_summary(technique, proc.returncode, proc.stdout, proc.stderr)
    if technique.target == "":
        outcome = "blocked" if client.startswith("NXDOMAIN") or "0.0.0.0" in client else "allowed"
    elif technique.expect[mode] == "redirected" and not hits:   # answered, but by us
        outcome = "blocked" if client.startswith("no answer") else "redirected"
    else:
        outcome = "allowed" if hits else "blocked"
    return Result(technique, mode, client, outcome, lab.events(after=last), hits)
