"""Alert rules as data, and the pure engine that applies them to events.

A rules file (TOML) holds `[[rule]]` tables:

    [[rule]]
    name = "vendor-egress"                 # the alert's name
    match = {type = ["egress.blocked", "tls.decision"], action = "block"}
    group_by = ["device_name"]              # one alert per device (or vendor, reason, ...)
    threshold = 1                           # events in the window that make it fire
    window = 300                            # seconds
    cooldown = 600                          # no new notification for the same group meanwhile
    severity = "warning"
    summary = "{device_name} tried to reach {vendor}"

`match` values are a string or a list; strings may be globs (`vendor-*`). An alert fires
when the count in the window reaches the threshold, and resolves once the window holds
fewer events and the cooldown is over. (Filter, group, count in a window, dedupe: the
CrowdSec leaky-bucket model.)
"""
from __future__ import annotations

import fnmatch
import tomllib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..events.event import PROBE_DEVICE, Event

FIELDS = ("type", "action", "reason", "device_id", "device_name", "device_ip", "name", "vendor",
          "category", "source")


class RulesError(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    name: str
    match: dict[str, tuple[str, ...]]
    group_by: tuple[str, ...] = ()
    threshold: int = 1
    window: float = 300.0
    cooldown: float = 600.0
    severity: str = "warning"
    summary: str = ""

    def matches(self, event: Event) -> bool:
        if event.device_id == PROBE_DEVICE and "device_id" not in self.match:
            return False          # the verification probe's attempts are not a device's
        return all(any(fnmatch.fnmatchcase(str(getattr(event, k)), p) for p in patterns)
                   for k, patterns in self.match.items())


@dataclass
class Notification:
    rule: Rule
    group: dict[str, str]
    status: str                      # firing | resolved
    count: int
    starts_at: float
    ends_at: float | None = None
    summary: str = ""


@dataclass
class _State:
    times: deque = field(default_factory=deque)
    firing_since: float | None = None
    last_sent: float = float("-inf")


def load_rules(path: str) -> list[Rule]:
    """Every problem at once, naming the file, the rule and the key."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise RulesError(f"{path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise RulesError(f"{path}: not valid TOML: {e}") from None
    rules, errors = [], []
    for i, table in enumerate(doc.get("rule", []), 1):
        where = f"{path}: rule {i} ({table.get('name', '?')})"
        try:
            rules.append(_rule(table))
        except (KeyError, TypeError, ValueError) as e:
            errors.append(f"{where}: {e}")
    if errors:
        raise RulesError("\n".join(errors))
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise RulesError(f"{path}: rule names must be unique")
    return rules


def _rule(t: dict[str, Any]) -> Rule:
    unknown = set(t) - {"name", "match", "group_by", "threshold", "window", "cooldown",
                        "severity", "summary"}
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
    match = {}
    for key, value in dict(t["match"]).items():
        if key not in FIELDS:
            raise ValueError(f"match: {key!r} is not an event field ({', '.join(FIELDS)})")
        match[key] = (value,) if isinstance(value, str) else tuple(str(v) for v in value)
    group_by = tuple(t.get("group_by", ()))
    for key in group_by:
        if key not in FIELDS:
            raise ValueError(f"group_by: {key!r} is not an event field")
    rule = Rule(str(t["name"]), match, group_by, int(t.get("threshold", 1)),
                float(t.get("window", 300)), float(t.get("cooldown", 600)),
                str(t.get("severity", "warning")), str(t.get("summary", "")))
    if rule.threshold < 1 or rule.window <= 0 or rule.cooldown < 0:
        raise ValueError("threshold >= 1, window > 0 and cooldown >= 0")
    return rule


class AlertEngine:
    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self._state: dict[tuple, _State] = {}

    def observe(self, event: Event, now: float) -> list[Notification]:
        out = []
        for rule in self.rules:
            if not rule.matches(event):
                continue
            group = {k: str(getattr(event, k)) or "unknown" for k in rule.group_by}
            state = self._state.setdefault((rule.name, tuple(group.items())), _State())
            state.times.append(now)
            self._expire(rule, state, now)
            if len(state.times) >= rule.threshold and now - state.last_sent >= rule.cooldown:
                state.firing_since = state.firing_since or now
                state.last_sent = now
                out.append(Notification(rule, group, "firing", len(state.times), state.firing_since,
                                        summary=_summary(rule, event)))
        return out

    def tick(self, now: float) -> list[Notification]:
        """Alerts whose window emptied below the threshold, cooldown over: resolved."""
        out = []
        by_name = {r.name: r for r in self.rules}
        for (name, group), state in self._state.items():
            rule = by_name.get(name)
            if rule is None or state.firing_since is None:
                continue
            self._expire(rule, state, now)
            if len(state.times) < rule.threshold and now - state.last_sent >= rule.cooldown:
                out.append(Notification(rule, dict(group), "resolved", len(state.times),
                                        state.firing_since, ends_at=now))
                state.firing_since = None
        return out

    @staticmethod
    def _expire(rule: Rule, state: _State, now: float) -> None:
        while state.times and now - state.times[0] > rule.window:
            state.times.popleft()


def _summary(rule: Rule, event: Event) -> str:
    values = {k: getattr(event, k) for k in FIELDS}
    try:
        return rule.summary.format(**values) if rule.summary else f"{rule.name}: {event.type}"
    except (KeyError, IndexError, ValueError):
        return rule.summary
