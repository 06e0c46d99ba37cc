"""The policy in force: swapped as one, announced, and its judge rebuilt with it.

A reload builds the new policy completely before anything changes; if the config
is invalid the running policy stays and a `config.rejected` event says why.
Every successful load emits events carrying the SHA-256 of what was loaded, so an
auditor can tell which policy was in force at any moment.
"""
from __future__ import annotations

import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily

from ..config import ConfigError
from ..events.bus import EventBus
from .judge import Judge
from .load import Policy

# Sections whose change needs a restart (listening sockets, open files).
RESTART_SECTIONS = ("log", "events", "metrics", "dns", "alerts")


class PolicyHolder:
    def __init__(self, policy: Policy, bus: EventBus, registry: CollectorRegistry) -> None:
        self.policy, self.bus = policy, bus
        self.learned = self.aliases = None        # the judge's injected state (attach)
        self._judge: Judge | None = None
        self._reloads = Counter("gcsguard_config_reloads_total", "Reload attempts by result",
                                ["result"], registry=registry)
        for result in ("success", "failure"):
            self._reloads.labels(result)
        self._last_ok = Gauge("gcsguard_config_last_reload_successful",
                              "1 if the last reload was applied, 0 if it was rejected",
                              registry=registry)
        self._last_ok_time = Gauge("gcsguard_config_last_reload_success_timestamp_seconds",
                                   "Unix time the policy in force was loaded", registry=registry)
        registry.register(_ListsCollector(self))
        self._last_ok.set(1)
        self._last_ok_time.set(time.time())

    def attach(self, learned=None, aliases=None) -> None:
        """The state the judge reads and others keep: the learned addresses (the firewall)
        and the CNAME targets of allowlisted answers (the resolver)."""
        if learned is not None:
            self.learned = learned
        if aliases is not None:
            self.aliases = aliases
        self._judge = None

    @property
    def judge(self) -> Judge:
        """The judge of the policy in force (rebuilt when the policy changes)."""
        if self._judge is None or self._judge.policy is not self.policy:
            self._judge = Judge(self.policy, self.learned, self.aliases)
        return self._judge

    def announce(self) -> None:
        """Events recording the policy now in force."""
        p = self.policy
        self.bus.emit("config.loaded", reason="load", details={
            "path": p.config.path, "sha256": p.config.sha256})
        self.bus.emit("lists.loaded", reason="load", details={
            "sha256": p.lists.sha256,
            "files": [{"path": r.path, "kind": r.kind, "status": r.status, "sha256": r.sha256,
                       "entries": r.entries, "bad_lines": r.bad_lines} for r in p.reports]})
        for r in p.failed_lists:
            self.bus.emit("lists.rejected", action="error", reason=r.status,
                          details={"path": r.path, "why": r.fatal, "errors": r.errors})

    def reject(self, error: ConfigError) -> None:
        self._reloads.labels("failure").inc()
        self._last_ok.set(0)
        self.bus.emit("config.rejected", action="error", reason="invalid", details={
            "path": self.policy.config.path, "errors": error.errors,
            "kept_sha256": self.policy.config.sha256})

    def apply(self, new: Policy) -> None:
        old, self.policy = self.policy, new
        self._reloads.labels("success").inc()
        self._last_ok.set(1)
        self._last_ok_time.set(time.time())
        self.announce()
        pending = [s for s in RESTART_SECTIONS if getattr(old.config, s) != getattr(new.config, s)]
        if pending:
            self.bus.emit("config.restart_required", reason="restart-needed",
                          details={"sections": pending})


def list_labels(paths: list[str]) -> list[str]:
    """Short, unique label values: 'vendors/dji.list', longer only where two would clash."""
    def tail(path: str, parts: int) -> str:
        return "/".join(path.split(os.sep)[-parts:])
    labels = [tail(p, 2) for p in paths]
    return [p if labels.count(label) > 1 else label for p, label in zip(paths, labels)]


class _ListsCollector:
    """List gauges read at scrape time, so a removed list leaves no stale series."""

    def __init__(self, holder: PolicyHolder) -> None:
        self.holder = holder

    def describe(self):
        return []

    def collect(self):
        entries = GaugeMetricFamily("gcsguard_list_entries", "Entries loaded from a list file",
                                    labels=["list", "kind", "vendor", "category"])
        bad = GaugeMetricFamily("gcsguard_list_bad_lines", "Lines of a list file that were skipped",
                                labels=["list"])
        ok = GaugeMetricFamily("gcsguard_list_load_ok",
                               "1 if the list file's current version loaded, 0 if it failed "
                               "(its previous version, if any, stays active)", labels=["list"])
        by_path = {s.path: s for s in self.holder.policy.lists.sources}
        reports = self.holder.policy.reports
        for r, name in zip(reports, list_labels([r.path for r in reports])):
            source = by_path.get(r.path)
            if source:
                entries.add_metric([name, r.kind, source.vendor, source.category], source.entries)
                bad.add_metric([name], source.bad_lines)
            ok.add_metric([name], 1 if r.status == "loaded" else 0)
        return [entries, bad, ok]
