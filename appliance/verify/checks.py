"""The checks `gcsguard verify` runs: what the probe attempts and what proves it was stopped.

Pure: built from the config and a few facts found at run time, judged from the client's
exit and output and the log records the attempt produced. A check passes only if the
client did not get through **and** a record of the attempt, attributed to the probe, is
in the log; the positive control passes only if the client got through.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..config import Config
from ..events.event import PROBE_DEVICE

DIG = ("dig", "+time=2", "+tries=1")
CURL = ("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3")
BLOCKING = ("block",)
GATE_TYPES = ("tls.decision", "http.decision", "tcp.decision")
SINKHOLED = ("NXDOMAIN", "0.0.0.0", "::", "NODATA")


@dataclass(frozen=True)
class Evidence:
    """The log record that must follow the attempt."""
    types: tuple[str, ...]
    actions: tuple[str, ...] = BLOCKING
    name: str = ""              # the record's name must be this
    dst: str = ""               # ... or its details.dst this
    reasons: tuple[str, ...] = ()
    dport: int = 0

    def matches(self, r: dict[str, Any]) -> bool:
        details = r.get("details") or {}
        return (r.get("device_id") == PROBE_DEVICE and r.get("type") in self.types
                and r.get("action") in self.actions
                and (not self.reasons or r.get("reason") in self.reasons)
                and (not self.name or r.get("name") == self.name)
                and (not self.dst or details.get("dst") == self.dst)
                and (not self.dport or details.get("dport") == self.dport))


@dataclass(frozen=True)
class Check:
    key: str                    # bounded: the `check` label of the metrics
    label: str
    command: tuple[str, ...] = ()
    evidence: Evidence | None = None
    control: bool = False       # the positive control: must get through
    answered: bool = False      # gcsguard's resolver must answer it (the DNS redirect)
    skip: str = ""              # why it is not run ("" = it runs)
    fail: str = ""              # why it fails without being run (the control cannot be made)


@dataclass
class Outcome:
    check: Check
    status: str                 # pass | fail | skip
    client: str                 # what the probe's client saw
    why: str = ""
    records: list[dict] = field(default_factory=list)
    unlogged: bool = False      # failed for want of a record: may still arrive

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check.key, "label": self.check.label, "status": self.status,
                "client": self.client, "why": self.why,
                "evidence": [{"n": r.get("n"), "type": r.get("type"), "reason": r.get("reason", "")}
                             for r in self.records[:3]]}


def build(config: Config, gateway: str, vendor_address: str, allowed_address: str,
          ipv6_route: bool = True) -> list[Check]:
    """`gateway`: the appliance's address as the probe sees it; `vendor_address`: a hard-coded
    vendor IP to try; `allowed_address`: what allowed_url's host resolves to; `ipv6_route`:
    whether the appliance has an IPv6 default route (without one, routing drops IPv6 before
    the ruleset sees it: nothing leaves, and nothing is logged)."""
    v, name = config.verify, config.verify.vendor_name
    gate = config.gate.enabled
    no_gate = "the gate is disabled ([gate] enabled = false)"
    no_vendor_ip = "no vendor address: set [verify] vendor_address (none learned yet)"
    no_allowed = "no address for allowed_url's host"
    ca = ("--cacert", v.ca_file) if v.ca_file else ()
    url = urlsplit(v.allowed_url)
    host = url.hostname or ""
    # the host as the probe resolved it through gcsguard's resolver (what DHCP tells a client)
    pinned = ("--resolve", f"{host}:{url.port or 443}:{allowed_address}") if allowed_address else ()
    ip_or_gate = ("egress.blocked", *GATE_TYPES)
    return [
        Check("vendor-name", f"vendor name lookup ({name})", (*DIG, f"@{gateway}", name),
              Evidence(("dns.query",), name=name)),
        Check("cname-cloak", f"CNAME-cloaked vendor ({v.cname_name})",
              (*DIG, f"@{gateway}", v.cname_name), Evidence(("dns.query",), name=v.cname_name),
              skip="" if v.cname_name else "no cname_name configured"),
        Check("vendor-ip", f"hard-coded vendor IP, HTTPS ({vendor_address})",
              (*CURL, "-k", f"https://{vendor_address}/"), Evidence(ip_or_gate, dst=vendor_address, dport=443),
              skip="" if vendor_address else no_vendor_ip),
        Check("mqtt", f"vendor MQTT, tcp/1883 ({vendor_address})",
              ("nc", "-z", "-w", "2", vendor_address, "1883"),
              Evidence(("egress.blocked",), dst=vendor_address, dport=1883),
              skip="" if vendor_address else no_vendor_ip),
        Check("foreign-dns", f"foreign DNS server ({v.foreign_resolver}, udp/53)",
              (*DIG, f"@{v.foreign_resolver}", name),
              Evidence(("dns.bypass",), actions=("redirect",), dst=v.foreign_resolver), answered=True),
        Check("dot", f"DNS over TLS ({v.foreign_resolver}, tcp/853)",
              (*DIG, "+tls", f"@{v.foreign_resolver}", name),
              Evidence(("egress.blocked",), dst=v.foreign_resolver, reasons=("dot",))),
        Check("doh", f"DNS over HTTPS ({v.doh_address})", (*DIG, "+https", f"@{v.doh_address}", name),
              Evidence(ip_or_gate, dst=v.doh_address, dport=443)),
        Check("httpdns", f"HTTPDNS (GET /d?dn=, {v.httpdns_address})",
              (*CURL, f"http://{v.httpdns_address}/d?dn={name}"),
              Evidence(ip_or_gate, dst=v.httpdns_address, dport=80)),
        Check("quic", f"QUIC, udp/443 to the allowed site ({allowed_address})",
              ("bash", "-c", f"printf 'quic-initial' | nc -u -w 1 {allowed_address} 443"),
              Evidence(("egress.blocked",), dst=allowed_address, reasons=("quic",)),
              skip=(no_allowed if not allowed_address else
                    "QUIC is allowed ([firewall] quic = true)" if config.firewall.quic else "")),
        Check("ipv6", f"IPv6 ({v.ipv6_address})", (*CURL, "-g", f"http://[{v.ipv6_address}]/"),
              Evidence(("egress.blocked",), dst=v.ipv6_address, reasons=("ipv6",)),
              skip="IPv6 is allowed ([network] ipv6 = on)" if config.network.ipv6 == "on" else
              "" if ipv6_route else "the appliance has no IPv6 default route: IPv6 cannot leave"),
        Check("sni-mismatch", f"vendor SNI to the allowed site's address ({name})",
              ("openssl", "s_client", "-connect", f"{allowed_address}:443", "-servername", name),
              Evidence(("tls.decision",), name=name),
              skip=no_gate if not gate else "" if allowed_address else no_allowed),
        Check("host-mismatch", f"vendor Host header to the allowed site's address ({name})",
              (*CURL, "-H", f"Host: {name}", f"http://{allowed_address}/"),
              Evidence(("http.decision",), name=name),
              skip=no_gate if not gate else "" if allowed_address else no_allowed),
        Check("allowed", f"positive control: {v.allowed_url or 'allowed_url not set'}",
              (*CURL, *ca, *pinned, v.allowed_url), control=True,
              evidence=Evidence(("egress.flow", *GATE_TYPES), actions=("allow",),
                                name=host if gate else ""),
              fail="allowed_url is not set: without a positive control no run can pass" if not host
              else "" if allowed_address else f"{host} did not resolve through gcsguard's resolver"),
    ]


def dig_answer(stdout: str) -> tuple[str, list[str]]:
    """(rcode, the answer records' data) from dig's output ("?" when it printed no header)."""
    status = stdout.split("status: ", 1)[1].split(",", 1)[0] if "status: " in stdout else "?"
    answers = [line.split()[-1] for line in stdout.split("ANSWER SECTION:")[-1].splitlines()[1:]
               if line.strip() and not line.startswith(";")] if "ANSWER SECTION:" in stdout else []
    return status, answers


def client_view(check: Check, returncode: int, stdout: str) -> tuple[bool, str]:
    """(got through, what the client saw, in a few words)."""
    tool = check.command[0] if check.command else ""
    if tool == "dig":
        if returncode:
            return False, "no answer"
        status, answers = dig_answer(stdout)
        if status == "NOERROR" and not answers:
            status = "NODATA"
        seen = f"{status} {' '.join(answers[:2])}".strip()
        sinkholed = status in SINKHOLED or all(a in SINKHOLED for a in answers)
        return not sinkholed, seen
    if tool == "curl":
        code = stdout.strip()
        if returncode == 0:
            return code != "403", f"HTTP {code}"
        return False, {28: "timeout", 7: "refused", 35: "TLS failed", 56: "reset",
                       52: "empty reply"}.get(returncode, f"curl exit {returncode}")
    if tool == "openssl":      # a server certificate came back: the handshake got through
        through = "BEGIN CERTIFICATE" in stdout
        return through, "handshake completed" if through else "handshake failed"
    if check.key == "quic":
        return False, "sent (UDP: the log decides)"
    return returncode == 0, "connected" if returncode == 0 else "no connection"


def judge(check: Check, returncode: int, stdout: str, records: list[dict]) -> Outcome:
    through, seen = client_view(check, returncode, stdout)
    found = [r for r in records if check.evidence and check.evidence.matches(r)]
    if check.control:
        if not through:
            return Outcome(check, "fail", seen, "the allowed destination is unreachable: the "
                           "network (or the policy) is broken, so the other results prove nothing")
        if check.evidence and not found:
            return Outcome(check, "fail", seen, "allowed, but no record of it: the log misses flows",
                           unlogged=True)
        return Outcome(check, "pass", seen, records=found)
    if through:
        return Outcome(check, "fail", seen, "the attempt got through", found)
    if check.answered and seen == "no answer":
        return Outcome(check, "fail", seen, "not answered by gcsguard's resolver: the DNS "
                       "redirect is not in force", found)
    if not found:
        return Outcome(check, "fail", seen, "stopped, but not logged as the probe's attempt",
                       unlogged=True)
    return Outcome(check, "pass", seen, records=found)
