"""Loading the policy: the config, the lists, the allowlist, the inventory and the alert rules,
read and checked once, as one value.

`config/` checks syntax and types; what an entry means is checked here, and a bad one
is a `ConfigError` naming the file and the key, exactly like a type error: nothing of a
half-valid policy is ever applied.
"""
from __future__ import annotations

import dataclasses

from ..alerts.rules import Rule, RulesError, load_rules
from ..config import Config, ConfigError, load_config
from ..lists import FileReport, ListSet, load
from .allow import Allow, AllowError, parse_allow
from .inventory import InventoryError, Known, parse_inventory


@dataclasses.dataclass(frozen=True)
class Policy:
    config: Config
    lists: ListSet
    reports: tuple[FileReport, ...]
    allows: tuple[Allow, ...] = ()              # [firewall] allow, parsed
    egress: tuple[Allow, ...] = ()              # [network] appliance_egress, parsed
    inventory: dict[str, Known] = dataclasses.field(default_factory=dict)
    alert_rules: tuple[Rule, ...] = ()

    @property
    def failed_lists(self) -> list[FileReport]:
        return [r for r in self.reports if r.status != "loaded"]

    def unloaded(self) -> list[str]:
        """Why an answer from these lists would not be the policy's: each list that did not
        load, or no block list at all. Commands that answer from lists refuse (exit 2)."""
        lines = [f"{r.path}: {r.fatal or r.status}" for r in self.failed_lists]
        if not any(r.kind == "block" and r.status == "loaded" for r in self.reports):
            lines.append(f"{self.config.path}: [lists] block: no block list loaded")
        return lines

    @property
    def mode(self) -> str:
        """The mode in force. A resolver-only test run (the ruleset off) enforces the block
        lists alone: without the ruleset there is no allowlist to enforce."""
        fw = self.config.firewall
        return fw.mode if fw.enabled else "vendor-block"


def load_policy(config_path: str, previous: Policy | None = None) -> Policy:
    """Raises ConfigError (config or an entry invalid); list failures are in the reports."""
    config = load_config(config_path)
    errors: list[str] = []
    allows = _entries(config, "firewall", "allow", errors)
    egress = _entries(config, "network", "appliance_egress", errors, names=False)
    inventory = {}
    try:
        inventory = parse_inventory(config.devices.inventory)
    except InventoryError as e:
        errors.append(f"{config.path}: [devices] inventory: {e}")
    rules: list[Rule] = []
    if config.alerts.rules_file:
        try:
            rules = load_rules(config.alerts.rules_file)
        except RulesError as e:
            errors.append(f"{config.path}: [alerts] rules_file: {e}")
    if errors:
        raise ConfigError(errors)
    lists, reports = load(list(config.lists.block), list(config.lists.allow),
                          config.lists.max_bad_lines, previous.lists if previous else None)
    return Policy(config, lists, tuple(reports), allows, egress, inventory, tuple(rules))


def _entries(config: Config, section: str, key: str, errors: list[str],
             names: bool = True) -> tuple[Allow, ...]:
    out = []
    for text in getattr(getattr(config, section), key):
        try:
            entry = parse_allow(text)
        except AllowError as e:
            errors.append(f"{config.path}: [{section}] {key}: {text!r}: {e}")
            continue
        if entry.name and not names:
            errors.append(f"{config.path}: [{section}] {key}: {text!r}: give an address or "
                          "network here, not a name")
            continue
        out.append(entry)
    return tuple(out)
