"""What the appliance itself sends on its WAN side, in each mode, against the rule of the
policy: every packet is derived from configuration alone, or is a client's request that
the judge allowed. Nothing derived from a refused request leaves, not even a lookup."""
import os
import signal
import subprocess
import time
import uuid

import dnslib
from scapy.all import DNS, IP, TCP, UDP, IPv6, rdpcap

from appliance.gate.follow import load_applied
from appliance.lab.internet import UPSTREAM_DNS
from appliance.lab.scenario import run_one, techniques
from appliance.lab.topology import LAN_V4, ns_exec
from appliance.lab.zone import Zone
from tests.network.test_links import wait_for


class WanCapture:
    """tcpdump on the appliance's WAN interface, outgoing packets only, into a pcap."""

    def __init__(self, lab, name: str) -> None:
        self.path = os.path.join(lab.directory, f"wan-{name}.pcap")
        self.process = subprocess.Popen(ns_exec(lab.ns.appl, "tcpdump", "-i", "wan0", "-Q", "out",
                                                "-n", "-U", "-w", self.path),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert "listening on" in self.process.stderr.readline()

    def packets(self):
        time.sleep(0.5)
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=10)
        return rdpcap(self.path)


def configured_names(judge) -> set[str]:
    """The names the learner may resolve on its own: list entries, the allowlist's names,
    and the CNAME targets their answers name (from the lab's zone)."""
    names = {n for n, source in judge.lists.domains.resolvable() if source.kind == "block"}
    names |= set(judge.allow_names.entries)
    zone, todo = Zone(), list(names)
    while todo:
        for rr in zone.answer(dnslib.DNSRecord.question(todo.pop())).rr:
            target = str(rr.rdata).rstrip(".").lower()
            if rr.rtype == dnslib.QTYPE.CNAME and target not in names:
                names.add(target)
                todo.append(target)
    return names


def violations(packets, judge, configured: set[str]) -> list[str]:
    out = []
    for packet in packets:
        ip = packet[IP] if IP in packet else packet[IPv6] if IPv6 in packet else None
        if ip is None:
            continue                                            # ARP: link housekeeping
        layer = packet[TCP] if TCP in packet else packet[UDP] if UDP in packet else None
        if ip.dst == UPSTREAM_DNS and layer is not None and layer.dport == 53:
            if DNS in packet and packet[DNS].qd:
                name = packet[DNS].qd[0].qname.decode(errors="replace").rstrip(".").lower()
                if name not in configured and judge.name(name).block:
                    out.append(f"DNS {name}")
            continue                                            # TCP set-up carries nothing
        proto = "tcp" if TCP in packet else "udp" if UDP in packet else "other"
        verdict = judge.connection(ip.dst, layer.dport if layer else 0, proto)
        if verdict.block:
            out.append(f"{proto} {ip.dst}:{layer.dport if layer else ''} ({verdict.reason})")
    return out


def test_everything_the_appliance_sends_on_the_wan_is_configured_or_allowed(lab):
    for mode in ("isolate", "vendor-block", "audit"):
        assert lab.reload(mode=mode, ipv6="off", allow=["www.allowed.example tcp/80,443"])
        capture = WanCapture(lab, mode)
        results = [run_one(lab, t) for t in techniques(lab.pki["ca"])]
        assert all(r.ok for r in results), [(r.technique.key, r.outcome) for r in results if not r.ok]
        for suffix in ("mydjiflight.dji.com", "dns.google", "any.example"):   # data in labels
            lab.run("ctl", "dig", "+time=1", "+tries=1", "TXT", f"@{LAN_V4}",
                    f"{uuid.uuid4().hex[:12]}.{suffix}")
        # the control: a lookup as the old learner made it, of a client's refused name
        leaked = f"{uuid.uuid4().hex[:12]}.dns.google"           # refused in every mode
        lab.run("appl", "dig", "+time=1", "+tries=1", f"@{UPSTREAM_DNS}", leaked)
        time.sleep(1.5)                         # a learner's lookup is out; the store is saved
        judge = load_applied(lab.config_path)
        found = violations(capture.packets(), judge, configured_names(judge))
        assert found == [f"DNS {leaked}"], (mode, found)


def test_refused_lookups_cause_no_upstream_query(lab):
    """Counted at the simulated internet's resolver: random labels under a vendor suffix (and,
    in isolate, under a domain on no list) never reach it; the same query for an allowed name
    does."""
    for mode, refused_suffix, allowed_suffix in (("vendor-block", "dji.com", "any.example"),
                                                 ("isolate", "dji.com", "www.allowed.example"),
                                                 ("isolate", "any.example", "www.allowed.example")):
        assert lab.reload(mode=mode, allow=["www.allowed.example tcp/80,443"])
        start = time.time()
        refused = [f"{uuid.uuid4().hex[:16]}.{refused_suffix}" for _ in range(20)]
        allowed = f"{uuid.uuid4().hex[:16]}.{allowed_suffix}"
        for name in refused:
            lab.run("ctl", "dig", "+time=1", "+tries=1", "TXT", f"@{LAN_V4}", name)
        lab.run("ctl", "dig", "+time=1", "+tries=1", "TXT", f"@{LAN_V4}", allowed)
        assert wait_for(lambda: allowed in lab.upstream_queries(after=start))  # positive control
        time.sleep(1.0)                                         # a learner's lookup would be out
        asked = lab.upstream_queries(after=start)
        # nothing carrying a refused label (the learner may re-resolve a listed name such as
        # flysafe-api.dji.com meanwhile: configured, and not the client's)
        labels = [r.split(".")[0] for r in refused]
        assert not [n for n in asked if any(label in n for label in labels)], (mode, asked)
