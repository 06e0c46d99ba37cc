"""The judge: every policy question the appliance asks, answered in one place.

A name a client looked up, a name in an answer's CNAME chain, an address in an answer,
a connection (address, port, protocol), a TLS ClientHello, an HTTP request: each gets a
`Verdict` in the mode in force: an action (allow, block, audit), a reason from the one
bounded vocabulary (reasons.py) and the match (list file and line, vendor, category).
The resolver's links, the gate, the ruleset renderer, the address learner and the
observation annotator all ask it, so the mode's exemptions, the category sets and the
allowlist are written once, here.

Pure: the learned addresses and the allowlisted names' aliases are injected.
"""
from __future__ import annotations

import ipaddress
from typing import NamedTuple, Protocol

from ..config.endpoint import host_of
from ..lists import Match
from .allow import AllowNames, grants, serves
from .httpdns import asked_name
from .load import Policy
from .reasons import BYPASS_CATEGORIES, address_kind


class Verdict(NamedTuple):
    action: str                  # allow | block | audit (let through, recorded as a vendor's)
    reason: str                  # reasons.JUDGE
    match: Match | None = None   # the list entry behind it, if any
    name: str = ""               # the name judged, or the listed name that led to an address

    @property
    def block(self) -> bool:
        return self.action == "block"

    @property
    def vendor(self) -> str:
        return self.match.source.vendor if self.match else ""

    @property
    def category(self) -> str:
        return self.match.source.category if self.match else ""


class Learned(Protocol):
    """What the judge reads of the learned addresses (firewall/learned.py)."""
    shared_policy: str

    def blocked(self, address: str) -> str | None: ...
    def conflict(self, address: str) -> bool: ...
    def names_for(self, address: str) -> list[str]: ...
    def services(self, address: str, allow_entry) -> tuple[bool, set]: ...


class NothingLearned:
    shared_policy = "block"

    def blocked(self, address: str) -> None:
        return None

    def conflict(self, address: str) -> bool:
        return False

    def names_for(self, address: str) -> list[str]:
        return []

    def services(self, address: str, allow_entry) -> tuple[bool, set]:
        return False, set()


class Judge:
    def __init__(self, policy: Policy, learned: Learned | None = None, aliases=None) -> None:
        self.policy, self.lists = policy, policy.lists
        self.mode = policy.mode
        self.learned = learned or NothingLearned()
        self.aliases = aliases if aliases is not None else frozenset()   # `in`: CNAME targets seen
        self.allow_names = AllowNames(policy.allows)                     # of allowlisted answers
        self.networks = [a for a in policy.allows if a.network is not None]

    def enforces(self, category: str) -> bool:
        """Audit lets vendors through (recorded); bypasses stay closed in every mode."""
        return self.mode != "audit" or category in BYPASS_CATEGORIES

    def _listed(self, match: Match, reason: str, name: str = "") -> Verdict:
        return Verdict("block" if self.enforces(match.source.category) else "audit", reason, match,
                       name)

    # --- the resolver -------------------------------------------------------------------
    def name(self, name: str) -> Verdict:
        """A name a client asked for. In isolate only the allowlist (and the CNAME targets
        its answers named) resolves: anything else never reaches an upstream."""
        verdict = self.lists.check_name(name)
        if verdict.blocked:
            return self._listed(verdict.block, "name-list", name)
        if self.mode != "isolate":
            return Verdict("allow", "unlisted", None, name)
        if self.allow_names(name) is not None or name in self.aliases:
            return Verdict("allow", "allowlisted", None, name)
        return Verdict("block", "not-allowed", None, name)

    def chain_name(self, name: str) -> Verdict | None:
        """A name in an upstream answer's CNAME chain; None when it is on no list."""
        verdict = self.lists.check_name(name)
        return self._listed(verdict.block, "cname-list", name) if verdict.blocked else None

    def answer_address(self, packed: bytes) -> Verdict | None:
        """An A/AAAA address in an upstream answer (4 or 16 bytes); None when on no list."""
        match = self.lists.ips.match_packed(packed)
        return self._listed(match, "address-list") if match else None

    # --- connections --------------------------------------------------------------------
    def address(self, address: str) -> Verdict | None:
        """An address on a list, or learned from a listed name; None when neither."""
        match = self.lists.ips.match(address) if address else None
        if match:
            enforced = self.enforces(match.source.category)
            return Verdict("block" if enforced else "audit",
                           f"{address_kind(match.source.category)}-address" if enforced
                           else "audit-vendor", match, self.vendor_name(address))
        kind = self.learned.blocked(address) if address else None
        if kind and not (self.learned.shared_policy == "allow" and self.learned.conflict(address)):
            name = self.vendor_name(address)
            listed = self.lists.check_name(name).block if name else None
            enforced = kind == "bypass" or self.mode != "audit"
            return Verdict("block" if enforced else "audit",
                           f"{kind}-address" if enforced else "audit-vendor", listed, name)
        return None

    def vendor_name(self, address: str) -> str:
        """The listed name that led to a learned address (not a CDN alias met on the way)."""
        names = self.learned.names_for(address) if address else []
        for name in names:
            if self.lists.check_name(name).blocked:
                return name
        return names[0] if names else ""

    def connection(self, address: str, port: int, proto: str = "tcp", name: str = "") -> Verdict:
        """A connection to `address`:`port` (by `name`, when the client said it)."""
        listed = self.address(address)
        if listed:
            return listed
        if self.mode != "isolate":
            return Verdict("allow", "unlisted", None, name)
        entry = self.allow_names(name) if name else None
        if entry is not None and serves(entry, proto, port):
            return Verdict("allow", "allowlisted", None, name)
        if address and any(_contains(a.network, address) and serves(a, proto, port)
                           for a in self.networks):
            return Verdict("allow", "allowlisted", None, name)
        if not name and address:          # no name shown: an allowlisted name's learned address
            any_port, services = self.learned.services(address, self.allow_names)
            if any_port or grants(services, proto, port):
                return Verdict("allow", "allowlisted", None, name)
        return Verdict("block", "not-allowed", None, name)

    # --- the gate -----------------------------------------------------------------------
    def tls(self, sni: str | None, address: str, port: int, sni_valid: bool = True) -> Verdict:
        """A whole ClientHello. The (outer) SNI decides like any name, ECH or not; an SNI
        that is not exactly one valid host name is refused except in audit."""
        name = (sni or "").rstrip(".").lower()
        if not sni_valid:
            by_address = self.address(address)
            if self.mode == "audit":
                return by_address or Verdict("allow", "no-sni", None, name)
            return Verdict("block", "bad-sni", by_address.match if by_address else None, name)
        return self._shown(name, address, port, ("sni-list", "sni-allowed", "no-sni"))

    def http(self, host: str, target: str, address: str, port: int) -> Verdict:
        """A plain-HTTP request: HTTPDNS by its shape whatever the host, then Host, then
        the address, as for TLS."""
        asked = asked_name(target)
        if asked is not None:
            listed = self.lists.check_name(asked).block if asked else None
            return Verdict("block", "httpdns-request", listed, asked)
        if not _host_text(host):               # undecodable bytes or controls in Host
            by_address = self.address(address)
            if self.mode == "audit":
                return by_address or Verdict("allow", "no-host", None, host)
            return Verdict("block", "bad-host", by_address.match if by_address else None, host)
        return self._shown(host_of(host).rstrip("."), address, port,
                           ("host-list", "host-allowed", "no-host"))

    def _shown(self, name: str, address: str, port: int, reasons: tuple[str, str, str]) -> Verdict:
        """A connection by the name the client showed (SNI or Host), else by its address."""
        listed, allowed, nameless = reasons
        if name:
            verdict = self.lists.check_name(name)
            if verdict.blocked:
                judged = self._listed(verdict.block, listed, name)
                return judged if judged.block else judged._replace(reason="audit-vendor")
        decided = self.connection(address, port, "tcp", name)
        if decided.reason in ("unlisted", "allowlisted"):
            return decided._replace(reason=allowed if name else nameless)
        return decided._replace(name=decided.name or name)


def _host_text(host: str) -> bool:
    """A Host header that is text: no control characters or spaces, and no byte that was
    not UTF-8 (mitmproxy hands those over as lone surrogates)."""
    return host.isprintable() and " " not in host          # a lone surrogate is not printable


def _contains(network, address: str) -> bool:
    try:
        return ipaddress.ip_address(address) in network
    except ValueError:
        return False
