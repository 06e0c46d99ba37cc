"""The firewall in the running appliance: loads the ruleset, keeps the learned sets, counts.

Fail closed: a ruleset is checked before it is loaded, and loaded in one
transaction, so a bad one leaves the previous table in force; stopping or killing
the daemon leaves the table as it is (only `gcsguard firewall open` removes it).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..atomic import atomic_write
from ..events.bus import EventBus
from ..events.clock import rfc3339
from ..policy import Policy
from ..policy.allow import AllowNames
from .boot import BOOT_TABLE, open_firewall
from .learn import Learner
from .learned import KINDS, LearnedAddresses, store_path
from .nft import Nft, NftError
from .render import DROP_REASONS, LOG_REASONS, render

log = logging.getLogger("gcsguard.firewall")
APPLIED = "applied-policy.json"
COUNTED = "counted.json"  # the kernel counters as last seen: what a restart has already counted
SAVE_EVERY = 1.0          # seconds: `lists ip` reads the saved provenance
COUNTED_EVERY = 5.0       # seconds between snapshots of the kernel counters
PRUNE_EVERY = 3600.0


def ruleset_text(policy: Policy, store: LearnedAddresses) -> str:
    """The ruleset for a policy and the learned addresses (allowed ports as the policy says)."""
    return render(policy, store.elements(AllowNames(policy.allows)))


class FirewallService:
    def __init__(self, policy: Policy, bus: EventBus, registry: CollectorRegistry, resolve) -> None:
        fw = policy.config.firewall
        self.bus, self.policy = bus, policy
        self.nft, self._reader = Nft(), Nft(json_output=True)
        self.state_path = store_path(policy.config.appliance.state_dir)
        self.store = LearnedAddresses(fw.shared_addresses)
        self.learner = Learner(self.store, resolve, self._on_new, fw.learn_min_interval)
        self._loads = Counter("gcsguard_firewall_ruleset_loads_total",
                              "Ruleset loads by result", ["result"], registry=registry)
        for result in ("success", "failure"):
            self._loads.labels(result)
        self._element_failures = Counter("gcsguard_firewall_set_update_failures_total",
                                         "Learned-set element updates nft refused", registry=registry)
        registry.register(_Collector(self))
        self._dirty = False
        self.sha256 = ""
        self._carry: dict[str, tuple[int, int]] = {}       # what this run's earlier tables counted
        self._while_down: dict[str, tuple[int, int]] = {}  # what the table counted with no daemon

    @property
    def table(self) -> str:
        return f"inet {self.policy.config.firewall.table}"

    def start(self) -> None:
        """Load the learned store and the ruleset; raises NftError (nothing changed) if refused."""
        os.makedirs(os.path.dirname(self.state_path), mode=0o750, exist_ok=True)
        try:
            self.store.load(self.state_path)
        except ValueError as e:
            damaged = f"{self.state_path}.damaged"
            os.replace(self.state_path, damaged)
            self.bus.emit("firewall.state_damaged", action="error", reason="unreadable",
                          details={"error": str(e), "kept_as": damaged})
        in_force, seen = self._kernel_counters(), self._load_counted()
        self.apply(self.policy)
        if self.policy.config.firewall.table != BOOT_TABLE:   # ours is in force: the boot table goes
            if open_firewall(BOOT_TABLE, self.nft):
                log.info("removed the boot table inet %s: inet %s is in force", BOOT_TABLE,
                         self.policy.config.firewall.table)
        # What the table in force counted before this run, less what the last run already
        # saw, was counted with no daemon running (after a crash, or between stop and
        # start): carried into the exported counters, never reset, and recorded.
        self._carry.clear()
        self._while_down = self._counted_while_down(in_force, *seen)

    @property
    def _counted_path(self) -> str:
        return os.path.join(self.policy.config.appliance.state_dir, COUNTED)

    def _load_counted(self) -> tuple[dict, float | None]:
        try:
            with open(self._counted_path) as f:
                saved = json.load(f)
            return dict(saved["counters"]), float(saved["time"])
        except (OSError, ValueError, KeyError, TypeError):
            return {}, None

    def _counted_while_down(self, in_force: dict[str, tuple[int, int]], seen: dict,
                            since: float | None) -> dict[str, tuple[int, int]]:
        down = {}
        for name, (packets, octets) in in_force.items():
            p, o = seen.get(name, (0, 0))
            if packets < p:                       # another table since the snapshot: all of it
                p, o = 0, 0
            if packets - p:
                down[name] = (packets - p, octets - o)
        if down:
            self.bus.emit("firewall.counted_while_down", action="block", reason="no-daemon",
                          details={"since": rfc3339(since) if since else None,
                                   "packets": sum(p for p, _ in down.values()),
                                   "by_reason": {k: v[0] for k, v in sorted(down.items())}})
        return down

    def save_counted(self) -> None:
        """Snapshot the kernel counters, so the next start knows what was counted after it."""
        counters = self._kernel_counters()
        if counters:
            atomic_write(self._counted_path, json.dumps({"time": time.time(), "counters": counters}))

    def check(self, policy: Policy) -> str:
        text = ruleset_text(policy, self.store)
        self.nft.check(text)
        return text

    def apply(self, policy: Policy) -> None:
        """Check, then load in one transaction; on NftError the old table stays in force."""
        try:
            text = self.check(policy)
            before = self._kernel_counters()
            self.nft.run(text)
        except NftError as e:
            self._loads.labels("failure").inc()
            self.bus.emit("firewall.rejected", action="error", reason="nft-refused",
                          details={"error": str(e)[:2000], "kept_sha256": self.sha256})
            raise
        self._loads.labels("success").inc()
        for name, (packets, octets) in before.items():   # a new table starts its counters at 0
            p, o = self._carry.get(name, (0, 0))
            self._carry[name] = (p + packets, o + octets)
        self.policy, self.sha256 = policy, hashlib.sha256(text.encode()).hexdigest()
        self.store.shared_policy = policy.config.firewall.shared_addresses
        self.learner.set_policy(policy.lists, policy.allows)
        self._save_ruleset(text)
        self.save_counted()                # a new table: its counters start again from 0
        self.bus.emit("firewall.applied", reason="load", details={
            "mode": policy.config.firewall.mode, "sha256": self.sha256,
            "table": self.table, "ipv6": policy.config.network.ipv6})

    def _save_ruleset(self, text: str) -> None:
        """The ruleset in force, and which policy it is: the gate follows `applied-policy.json`,
        so resolver, ruleset and gate change together (or, on refusal, none of them)."""
        state = self.policy.config.appliance.state_dir
        for name, content in (("ruleset.nft", text), (APPLIED, json.dumps({
                "config_sha256": self.policy.config.sha256, "lists_sha256": self.policy.lists.sha256,
                "ruleset_sha256": self.sha256, "mode": self.policy.config.firewall.mode}))):
            atomic_write(os.path.join(state, name), content)

    def _on_new(self, kind: str, name: str, addresses: list[str]) -> None:
        """New learned addresses: into the sets now, one transaction, before any answer leaves."""
        self._dirty = True
        commands = []
        for address in addresses:
            family = "v6" if ":" in address else "v4"
            shared = self.store.conflict(address)
            if shared:
                self.bus.emit("firewall.shared_address", action="block" if self.store.shared_policy
                              == "block" else "allow", reason="shared-address", name=name,
                              details={"address": address, "policy": self.store.shared_policy,
                                       "provenance": self.store.about(address)})
            if kind == "allow":
                any_port, services = self.store.services(address, self.learner.allow_entry)
                if any_port:
                    commands.append(f"learned_allow_{family} {{ {address} }}")
                commands += [f"learned_allow_svc_{family} {{ {address} . {p} . {port} }}"
                             for p, port in sorted(services)]
            elif not (shared and self.store.shared_policy == "allow"):
                commands.append(f"learned_{kind}_{family} {{ {address} }}")
            self.bus.emit("firewall.address_learned", action="info", reason=kind, name=name,
                          details={"address": address})
        if commands:
            self._run("\n".join(f"add element {self.table} {c}" for c in commands))

    def _run(self, text: str) -> None:
        try:
            self.nft.run(text)
        except NftError as e:                      # e.g. the table was removed by `firewall open`
            self._element_failures.inc()
            log.error("set update refused: %s", e)

    async def maintain(self) -> None:
        """Save the store when it changed; prune addresses no name produces any more."""
        last_prune = last_counted = time.monotonic()
        while True:
            await asyncio.sleep(SAVE_EVERY)
            if time.monotonic() - last_counted > COUNTED_EVERY:
                last_counted = time.monotonic()
                await asyncio.to_thread(self.save_counted)
            if time.monotonic() - last_prune > PRUNE_EVERY:
                last_prune = time.monotonic()
                self.prune(time.time())
            if self._dirty:
                self._dirty = False
                text = self.store.snapshot()          # on the loop; the disk write off it
                await asyncio.to_thread(self.store.save, self.state_path, text)

    def prune(self, now: float) -> None:
        keep = self.policy.config.firewall.learn_keep_days * 86400
        gone = self.store.prune(now, keep)
        if not gone:
            return
        self._dirty = True
        for kind, address in gone:
            self.bus.emit("firewall.address_pruned", reason=kind, details={"address": address})
        # One atomic reload with the pruned sets: `delete element` of an absent one aborts a batch.
        self.apply(self.policy)

    def counters(self) -> dict[str, tuple[int, int]]:
        """Named counters of our table, reason -> (packets, bytes), monotonic across reloads
        and restarts (what earlier tables counted, and the table counted while no daemon
        ran, is carried over)."""
        return _plus(_plus(self._kernel_counters(), self._carry), self._while_down)

    def while_down(self) -> dict[str, int]:
        """Packets per reason counted before this run began, with no daemon to log them."""
        return {name: packets for name, (packets, _) in self._while_down.items()}

    def _kernel_counters(self) -> dict[str, tuple[int, int]]:
        try:
            out = self._reader.run(f"list counters table {self.table}")
        except NftError:
            return {}
        result = {}
        for item in json.loads(out).get("nftables", []):
            c = item.get("counter")
            if c:
                result[c["name"].replace("_", "-")] = (c["packets"], c["bytes"])
        return result

    def save(self) -> None:
        self.store.save(self.state_path)
        self.save_counted()


def _plus(a: dict[str, tuple[int, int]], b: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    return {name: (p + b.get(name, (0, 0))[0], o + b.get(name, (0, 0))[1])
            for name, (p, o) in a.items()}


class _Collector:
    """nft counters and set sizes read at scrape time."""

    def __init__(self, service: FirewallService) -> None:
        self.service = service

    def describe(self):
        return []

    def collect(self):
        packets = CounterMetricFamily("gcsguard_firewall_packets", "Packets counted per reason by "
                                      "the kernel (dropped, or logged for log-only reasons)",
                                      labels=["reason"])
        unlogged = CounterMetricFamily("gcsguard_firewall_unlogged_packets", "Of those, packets over "
                                       "the log rate: counted, not logged", labels=["reason"])
        counted = self.service.counters()
        for reason in (*DROP_REASONS, *LOG_REASONS):
            packets.add_metric([reason], counted.get(reason, (0, 0))[0])
            unlogged.add_metric([reason], counted.get(f"{reason}-unlogged", (0, 0))[0])
        learned = GaugeMetricFamily("gcsguard_firewall_learned_addresses",
                                    "Addresses learned from DNS, by kind", labels=["kind"])
        for kind in KINDS:
            learned.add_metric([kind], len(self.service.store.kinds[kind]))
        pending = GaugeMetricFamily("gcsguard_firewall_learn_pending",
                                    "Names due for resolution now or being resolved",
                                    value=self.service.learner.pending())
        mode = GaugeMetricFamily("gcsguard_firewall_mode", "1 for the mode in force", labels=["mode"])
        for m in ("isolate", "vendor-block", "audit"):
            mode.add_metric([m], 1 if self.service.policy.config.firewall.mode == m else 0)
        return [packets, unlogged, learned, pending, mode]

