"""The gate's decisions: a pure function of the policy, the learned addresses and what the
client showed (SNI, Host, path), in the resolver's and the ruleset's terms.

The same lists and the same allowlist as the resolver and the ruleset: a name is judged
as the resolver would judge it, an address as the ruleset would.
"""
from __future__ import annotations

from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from ..dns.chain import AUDIT_EXEMPT
from ..firewall.allow import parse_allow
from ..firewall.learn import AllowNames
from ..firewall.learned import LearnedAddresses
from ..firewall.render import address_kind
from ..policy import Policy

# Paths and parameters that make any host an HTTPDNS resolver.
HTTPDNS_PATHS = {"/d": "dn", "/resolve": "name", "/dns-query": None, "/api/resolve": "name"}


class Decision(NamedTuple):
    block: bool
    reason: str               # bounded: sni-list, host-list, vendor-address, bypass-address,
                              # httpdns-request, not-allowed, audit-vendor (let through), ...
    name: str = ""
    vendor: str = ""
    category: str = ""


class GatePolicy:
    def __init__(self, policy: Policy, learned: LearnedAddresses) -> None:
        self.policy, self.lists, self.learned = policy, policy.lists, learned
        fw = policy.config.firewall
        self.mode = fw.mode
        self.allows = [parse_allow(a) for a in fw.allow]
        self.allow_names = AllowNames(self.allows)

    def _enforced(self, category: str) -> bool:
        return self.mode != "audit" or category in AUDIT_EXEMPT

    def _by_name(self, name: str, listed: str) -> Decision | None:
        verdict = self.lists.check_name(name)
        if verdict.blocked:
            source = verdict.block.source
            return Decision(self._enforced(source.category),
                            listed if self._enforced(source.category) else "audit-vendor",
                            name, source.vendor, source.category)
        return None

    def _by_address(self, address: str) -> Decision | None:
        match = self.lists.ips.match(address) if address else None
        if match:
            enforced = self._enforced(match.source.category)
            return Decision(enforced, f"{address_kind(match.source.category)}-address" if enforced
                            else "audit-vendor", "", match.source.vendor, match.source.category)
        kind = self.learned.blocked(address) if address else None
        if kind and not (self.learned.shared_policy == "allow" and self.learned.conflict(address)):
            names = self.learned.names_for(address)
            verdict = self.lists.check_name(names[0]) if names else None
            vendor = verdict.block.source.vendor if verdict and verdict.block else ""
            enforced = kind == "bypass" or self.mode != "audit"
            return Decision(enforced, f"{kind}-address" if enforced else "audit-vendor",
                            names[0] if names else "", vendor)
        return None

    def _isolated(self, name: str, address: str, port: int) -> Decision | None:
        """isolate: only what the allowlist names (by name or by address and port) passes."""
        if self.mode != "isolate":
            return None
        entry = self.allow_names(name) if name else None
        if entry is not None and _serves(entry, port):
            return None
        if address and any(a.network is not None and _contains(a.network, address) and _serves(a, port)
                           for a in self.allows):
            return None
        return Decision(True, "not-allowed", name)

    def tls(self, sni: str | None, address: str, port: int, ech: bool = False) -> Decision:
        name = (sni or "").rstrip(".").lower()
        if name and not ech:
            decided = self._by_name(name, "sni-list")
        else:
            decided = None
        decided = decided or self._by_address(address) or self._isolated(name, address, port)
        if decided:                      # audit: a vendor is let through, and said so
            return decided._replace(name=decided.name or name)
        return Decision(False, "ech" if ech else ("sni-allowed" if name else "no-sni"), name)

    def http(self, host: str, target: str, address: str, port: int) -> Decision:
        name = host.split(":")[0].rstrip(".").lower() if host else ""
        url = urlsplit(target)
        if url.path in HTTPDNS_PATHS:
            key = HTTPDNS_PATHS[url.path]
            if key is None or key in parse_qs(url.query):
                return Decision(True, "httpdns-request", name)
        decided = ((self._by_name(name, "host-list") if name else None) or self._by_address(address)
                   or self._isolated(name, address, port))
        if decided:
            return decided._replace(name=decided.name or name)
        return Decision(False, "host-allowed" if name else "no-host", name)


def _serves(entry, port: int) -> bool:
    return not entry.services or any(p == "tcp" and _in_range(port, r) for p, r in entry.services)


def _in_range(port: int, spec: str) -> bool:
    low, _, high = spec.partition("-")
    return int(low) <= port <= int(high or low)


def _contains(network, address: str) -> bool:
    import ipaddress
    try:
        return ipaddress.ip_address(address) in network
    except ValueError:
        return False
