"""The gate follows the daemon, not the file: it takes a config only once the daemon has
applied it (its hash in state_dir/applied-policy.json, written after nft accepted the
matching ruleset), with the addresses the daemon learned, and watches both for changes.
A config nft refused therefore reaches neither the ruleset nor the gate. Nor do lists the
gate could not read (its user may lack a permission the daemon has): lists that are not the
ones the daemon applied are refused, never judged with as if they were empty.
"""
from __future__ import annotations

import json
import os

from ..firewall.learned import LearnedAddresses, store_path
from ..firewall.service import APPLIED
from ..policy import Judge, load_policy


def load_applied(path: str, previous: Judge | None = None) -> Judge:
    """The judge of the applied policy, with the learned addresses. ValueError if the config
    at `path` is not the one the daemon applied (ConfigError if it is not valid): the
    caller keeps `previous`."""
    policy = load_policy(path, previous.policy if previous else None)
    applied = _applied(policy.config.appliance.state_dir)
    if applied.get("config_sha256") not in (None, policy.config.sha256):
        raise ValueError(f"{policy.config.path} is not the policy the daemon applied "
                         f"({applied['config_sha256'][:12]}): keeping the one in force")
    if applied.get("lists_sha256") not in (None, policy.lists.sha256):
        raise ValueError(f"the lists the gate read ({policy.lists.sha256[:12]}) are not the ones "
                         f"the daemon applied ({applied['lists_sha256'][:12]}): keeping the ones in force")
    unloaded = policy.unloaded()
    if unloaded and "lists_sha256" not in applied:         # nothing to compare them with
        raise ValueError("not every list loaded for the gate: " + "; ".join(unloaded[:3]))
    learned = LearnedAddresses(policy.config.firewall.shared_addresses)
    learned.load(store_path(policy.config.appliance.state_dir))
    return Judge(policy, learned)


def watched(state_dir: str) -> dict[str, float]:
    """Modification times of what the daemon writes when it reloads or learns (0: absent)."""
    out = {}
    for path in (os.path.join(state_dir, APPLIED), store_path(state_dir)):
        try:
            out[path] = os.stat(path).st_mtime
        except OSError:
            out[path] = 0.0
    return out


def _applied(state_dir: str) -> dict:
    """What the daemon last applied (config and lists hashes), {} before it ever ran."""
    try:
        with open(os.path.join(state_dir, APPLIED)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}
