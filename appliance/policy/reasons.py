"""The one vocabulary of reasons: why something was refused, let through or logged.

A reason is a bounded label (metrics, alert rules and the report group by it). The
ruleset's reasons are also its log prefixes (`gcsguard <reason> `), and the packet
reader turns a prefix back into an event with the table below: one table, so the two
can never drift apart.
"""
from __future__ import annotations

from typing import NamedTuple

# Bypass categories: the ways around our resolver. They stay closed in every mode, audit too.
BYPASS_CATEGORIES = frozenset({"doh", "dot", "httpdns", "resolver"})


def address_kind(category: str) -> str:
    """The learned set an address of a list's category goes to: 'bypass' or 'vendor'."""
    return "bypass" if category in BYPASS_CATEGORIES else "vendor"


class RulesetReason(NamedTuple):
    name: str            # the log prefix and the chain's counter
    drops: bool          # False: logged and let through (the chain returns)
    event: str           # the event type a logged packet becomes
    action: str          # the event's action


RULESET = (
    RulesetReason("dot", True, "egress.blocked", "block"),
    RulesetReason("quic", True, "egress.blocked", "block"),
    RulesetReason("ipv6", True, "egress.blocked", "block"),
    RulesetReason("bypass-address", True, "egress.blocked", "block"),
    RulesetReason("vendor-address", True, "egress.blocked", "block"),
    RulesetReason("vendor-learned", True, "egress.blocked", "block"),
    RulesetReason("not-allowed", True, "egress.blocked", "block"),
    RulesetReason("inbound", True, "inbound.blocked", "block"),
    RulesetReason("input", True, "input.blocked", "block"),
    RulesetReason("wan-input", True, "input.blocked", "block"),
    RulesetReason("appliance-egress", True, "appliance.egress_blocked", "block"),
    RulesetReason("rogue-ra", True, "lan.rogue_ra", "block"),
    RulesetReason("dns-bypass", False, "dns.bypass", "redirect"),
    RulesetReason("audit-vendor", False, "egress.audit", "log"),
)
BY_PREFIX = {r.name: r for r in RULESET}
UNKNOWN_PREFIX = RulesetReason("unknown", True, "egress.blocked", "block")

# The judge's reasons (resolver, gate, annotator): why a name, an address, a ClientHello
# or a request was refused, audited or allowed.
JUDGE = frozenset({
    # refused or audited
    "name-list", "cname-list", "address-list", "sni-list", "host-list", "vendor-address",
    "bypass-address", "httpdns-request", "not-allowed", "bad-sni", "bad-host", "hello-incomplete",
    "handshake-timeout",
    "audit-vendor", "no-policy",
    # let through
    "unlisted", "allowlisted", "sni-allowed", "host-allowed", "no-sni", "no-host",
})
