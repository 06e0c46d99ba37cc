"""Observation in the running appliance, assembled in one place.

Order of the parts: device identity first (everything else asks it who sent a
packet), then attribution (fed by the resolver, before answers leave), then the
two packet-side readers that use both: logged drops (NFLOG) and allowed flows
(conntrack).
"""
from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..config import Config
from ..events.bus import EventBus
from ..firewall.render import lan_interfaces
from .annotate import Annotator
from .attribution import Attribution
from .devices import Devices
from .evidence import PcapStore
from .flows import Flow, FlowReader
from .nflog import NflogMetrics, NflogReader
from .packets import PacketEvents

PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}
# Per namespace, set before flows start: byte counters and start/stop times on conntrack entries.
SYSCTLS = {"net/netfilter/nf_conntrack_acct": "1", "net/netfilter/nf_conntrack_timestamp": "1"}


class Observation:
    def __init__(self, config: Config, bus: EventBus, registry: CollectorRegistry, judge,
                 inventory: dict, local_addresses: set[str], counters=lambda: {},
                 while_down=lambda: {}) -> None:
        self.bus, self.local, self.counters, self.while_down = bus, local_addresses, counters, while_down
        self.gate_ports = ({80, 443, *map(int, config.gate.extra_ports)} if config.gate.enabled
                           else set())
        self.report_every = config.events.drop_report_interval
        d = config.devices
        self.devices = Devices(inventory, bus, d.report_unknown)
        self.attribution = Attribution(d.dns_memory, d.dns_memory_seconds)
        self.annotator = Annotator(bus, judge, self.attribution, self.devices)
        e = config.evidence
        self.evidence = PcapStore(e.pcap_directory, e.max_file_bytes, e.max_total_bytes, lambda gone:
                                  bus.emit("evidence.pruned", reason="budget", details={"files": gone}))
        self.packets = PacketEvents(bus, self.annotator, set(lan_interfaces(config)),
                                    self.evidence, lambda ip: ip in self.local)
        self.nflog = NflogReader(config.firewall.log_group)
        NflogMetrics(self.nflog, registry)
        self.flows = FlowReader(self._is_lan_egress, self._flow,
                                progress_every=config.firewall.flow_progress_interval)
        self.flow_counts: dict[str, int] = {}
        self._flow_fields: dict[int, dict] = {}                  # open flow id -> its annotation
        self.gate_verdicts: dict[tuple[str, int], dict] = {}     # (client, port) -> the gate's word
        self.flow_bytes = {"out": 0, "in": 0}
        registry.register(self)
        bus.add_sink("devices", self, config.events.queue_size)

    def start(self) -> list[asyncio.Task]:
        for key, value in SYSCTLS.items():
            try:
                with open(f"/proc/sys/{key}", "w") as f:
                    f.write(value)
            except OSError as e:
                self.bus.emit("flows.degraded", action="error", reason="sysctl",
                              details={"sysctl": key.replace("/", "."), "error": str(e)})
        return [asyncio.create_task(self.nflog.run(self.packets), name="nflog"),
                asyncio.create_task(self.flows.run(), name="flows"),
                asyncio.create_task(self._account(), name="accounting")]

    def accounting(self) -> dict:
        """Kernel count = logged + unlogged + counted while no daemon ran (recorded at start:
        firewall.counted_while_down), per reason; what the reader lost is counted apart."""
        counted, down = self.counters(), self.while_down()
        reasons = {r for r in counted if not r.endswith("-unlogged")}
        per = {r: {"kernel": counted[r][0], "unlogged": counted.get(f"{r}-unlogged", (0, 0))[0],
                   "logged": self.packets.logged.get(r, 0),
                   # sent to a log no one read; those over the rate are in `unlogged` already
                   "while_down": down.get(r, 0) - down.get(f"{r}-unlogged", 0)}
               for r in sorted(reasons)}
        kernel = sum(v["kernel"] for v in per.values())
        accounted = sum(v["unlogged"] + v["logged"] + v["while_down"] for v in per.values())
        return {"reasons": {r: v for r, v in per.items() if v["kernel"]},
                "reader": {"received": self.nflog.received, "gaps": self.nflog.gaps,
                           "overruns": self.nflog.overruns},
                "kernel": kernel, "unaccounted": kernel - accounted}

    async def _account(self) -> None:
        """A summary record in the log whenever the counts moved."""
        last = None
        while True:
            await asyncio.sleep(self.report_every)
            summary = self.accounting()
            if summary["kernel"] != last:
                last = summary["kernel"]
                self.bus.emit("firewall.accounting", action="error" if summary["unaccounted"]
                              else "info", reason="summary", details=summary)

    async def handle(self, events) -> None:
        """Leases keep identities current; the gate's verdicts name the flows it cut."""
        for event in events:
            if event.type == "dhcp.lease":
                self.devices.lease(event)
            elif event.source == "gate" and event.details.get("sport"):
                if len(self.gate_verdicts) > 100_000:
                    self.gate_verdicts.clear()
                self.gate_verdicts[(event.device_ip, event.details["sport"])] = {
                    "action": event.action, "reason": event.reason, "name": event.name}

    async def close(self) -> None:
        self.evidence.close()              # at shutdown (the bus closes its sinks last)

    def _is_lan_egress(self, flow: Flow) -> bool:
        """A LAN device's flow out: not the appliance's own (the gate's upstream legs
        included), not DNS redirected to the resolver; a flow redirected to the gate is the
        device's, recorded by its original destination."""
        if flow.src in self.local or flow.dst in self.local:
            return False
        return not flow.redirected or (flow.proto == 6 and flow.dport in self.gate_ports)

    def _flow(self, state: str, flow: Flow) -> None:
        self.flow_counts[state] = self.flow_counts.get(state, 0) + 1
        fields = self._annotation(state, flow)
        details = fields["details"]
        details.update(src=flow.src, dst=flow.dst, proto=PROTOCOLS.get(flow.proto, str(flow.proto)),
                       sport=flow.sport, dport=flow.dport, flow_id=flow.id)
        if flow.redirected:
            details["via"] = "gate"
            gate = self.gate_verdicts.pop((flow.src, flow.sport), None) if state == "end" else (
                self.gate_verdicts.get((flow.src, flow.sport)))
            if gate:
                details["gate"] = gate
        if state != "new":
            details.update(bytes_out=flow.bytes_out, bytes_in=flow.bytes_in,
                           packets_out=flow.packets_out, packets_in=flow.packets_in)
            if flow.start_ns:
                end = flow.stop_ns or _now_ns()
                details["duration_s"] = round((end - flow.start_ns) / 1e9, 3)
        if state == "end":
            self.flow_bytes["out"] += flow.bytes_out
            self.flow_bytes["in"] += flow.bytes_in
        # A flow through the gate is the gate's to decide: "redirect" until its verdict is known
        # (on the end record), so a connection the gate refuses never reads as allowed.
        action = details["gate"]["action"] if "gate" in details else (
            "redirect" if flow.redirected else "allow")
        self.bus.emit("egress.flow", action=action, reason=state, **fields)
        if state == "new":
            self.annotator.flag_direct_ip(fields, action, flow.dport)

    def _annotation(self, state: str, flow: Flow) -> dict:
        """A flow's device, name and vendor as they were when it started: found once, kept
        while it is open (bounded like the reader's table), copied for each record."""
        if state in ("end", "lost"):
            known = self._flow_fields.pop(flow.id, None)
        else:
            known = self._flow_fields.get(flow.id)
        if known is None:
            known = self.annotator.fields(flow.src, flow.dst)
            if state in ("new", "resync") and len(self._flow_fields) < self.flows.max_open:
                self._flow_fields[flow.id] = known
        return {**known, "details": dict(known["details"])}

    def describe(self):
        return []

    def collect(self):
        flows = CounterMetricFamily("gcsguard_flows", "Allowed LAN egress flows seen by conntrack, "
                                    "by record (new, end, progress, resync, lost)", labels=["state"])
        for state in ("new", "end", "progress", "resync", "lost"):
            flows.add_metric([state], self.flow_counts.get(state, 0))
        open_now = GaugeMetricFamily("gcsguard_flows_open", "Allowed flows open (tracked for "
                                     "progress and end records)", value=len(self.flows.open))
        flows_untracked = CounterMetricFamily("gcsguard_flows_untracked", "Flows not tracked "
                                              "because the table of open flows was full (their "
                                              "start and end are still recorded)",
                                              value=self.flows.untracked)
        volume = CounterMetricFamily("gcsguard_flow_bytes", "Bytes of ended allowed flows",
                                     labels=["direction"])
        for direction, n in self.flow_bytes.items():
            volume.add_metric([direction], n)
        overruns = CounterMetricFamily("gcsguard_conntrack_overruns", "conntrack event overruns "
                                       "(each followed by a re-read of the table)",
                                       value=self.flows.overruns)
        direct = CounterMetricFamily("gcsguard_direct_ip_attempts", "Attempts to addresses the device "
                                     "never got from DNS", labels=["action"])
        for action, n in sorted(self.annotator.direct_ip_count.items()):
            direct.add_metric([action], n)
        devices = GaugeMetricFamily("gcsguard_devices", "Devices (MACs) seen since start",
                                    labels=["known"])
        known = sum(1 for mac in self.devices.by_mac if mac in self.devices.inventory)
        devices.add_metric(["true"], known)
        devices.add_metric(["false"], len(self.devices.by_mac) - known)
        untracked = CounterMetricFamily("gcsguard_devices_untracked", "New unknown MACs not kept "
                                        "because the device table was full (MAX_DEVICES)",
                                        value=self.devices.untracked)
        logged = CounterMetricFamily("gcsguard_logged_packets", "Packets received from the kernel's "
                                     "packet log, by reason", labels=["reason"])
        for reason, n in sorted(self.packets.logged.items()):
            logged.add_metric([reason], n)
        pcap = CounterMetricFamily("gcsguard_evidence_packets", "Logged packets stored as pcap "
                                   "evidence, by result", labels=["result"])
        pcap.add_metric(["written"], self.evidence.written)
        pcap.add_metric(["failed"], self.evidence.failures)
        return [flows, open_now, flows_untracked, volume, overruns, direct, devices, untracked,
                logged, pcap]


def _now_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_REALTIME)     # conntrack stamps are wall-clock ns

