"""The ruleset as text: a pure function of the config, the lists and the learned addresses.

Everything lives in one `inet` table of ours, replaced atomically (add, delete,
define in one transaction), so a failed load leaves the previous table whole and
no other table is ever touched. Each refusal jumps to a small chain per reason
that counts it (named counter), logs it through NFLOG (rate-limited: the counter
stays exact) and drops it; the reason is the log prefix.
"""
from __future__ import annotations

import ipaddress
from typing import Iterable, Mapping

from ..config import Config
from ..policy import Judge, Policy
from ..policy.reasons import RULESET, address_kind
from .host import gate_ports, input_rules, listen_port, output_rules, set_of

# The reasons' chains (policy/reasons.py): log-only ones (the packet goes on) "return".
DROP_REASONS = tuple(r.name for r in RULESET if r.drops)
LOG_REASONS = tuple(r.name for r in RULESET if not r.drops)
PREFIX = "gcsguard "

# Learned sets (filled by the daemon, element by element): kind -> nft set name stem.
LEARNED = ("learned_vendor", "learned_bypass", "learned_allow")


def nft_name(reason: str) -> str:
    return reason.replace("-", "_")


def lan_interfaces(config: Config) -> tuple[str, ...]:
    """The LAN's interfaces, and the verification probe's link: its traffic must take the
    controllers' path through every chain."""
    probe = (config.verify.probe_interface,) if config.verify.enabled else ()
    return (*config.network.lan_interfaces, *probe)


def render(policy: Policy, learned: Mapping[str, Iterable[str]] | None = None) -> str:
    """The whole table, ready for one `nft -f`. `learned` maps LEARNED set stems to addresses."""
    config = policy.config
    net, fw = config.network, config.firewall
    learned = learned or {}
    static = {"vendor": [], "bypass": []}
    for network, source in policy.lists.ips.networks():
        if source.kind == "block":
            static[address_kind(source.category)].append(network)
    allows = policy.allows
    lan = set_of(lan_interfaces(config))
    wan = f'"{net.wan_interface}"'
    dns_port = listen_port(config.dns.listen, 53)

    sets = []
    for stem in ("vendor", "bypass"):
        sets += _addr_sets(stem, static[stem], interval=True)
    sets += _addr_sets("allow", [a.network for a in allows if a.network and not a.services], True)
    sets += _svc_sets("allow_svc", [(a.network, s) for a in allows if a.network for s in a.services])
    for stem in LEARNED:
        sets += _addr_sets(stem, [ipaddress.ip_address(a) for a in learned.get(stem, ())], False)
    sets += _svc_sets("learned_allow_svc", [
        (ipaddress.ip_address(a), s) for a, s in learned.get("learned_allow_svc", ())])

    chains = [_reason_chain(r, fw.log_group, fw.log_rate, drop=True) for r in DROP_REASONS]
    chains += [_reason_chain(r, fw.log_group, fw.log_rate, drop=False) for r in LOG_REASONS]
    # `ct event set 0`: no conntrack events for flows the flow reader would skip anyway (DNS
    # to the resolver, the appliance's own): parsing them cost the daemon a core under load.
    redirects = [f"iifname {lan} meta l4proto {{ tcp, udp }} th dport 53 fib daddr type != local "
                 "jump log_dns_bypass",
                 f"iifname {lan} meta l4proto {{ tcp, udp }} th dport 53 ct event set 0 "
                 f"redirect to :{dns_port}"]
    if config.gate.enabled:       # the LAN's web ports to the gate (SNI / Host), never forwarded
        family = "" if net.ipv6 == "on" else "meta nfproto ipv4 "   # v6 off: forward drops it
        redirects.append(f"iifname {lan} {family}tcp dport {{ {', '.join(gate_ports(config))} }} "
                         f"fib daddr type != local redirect to :{config.gate.listen_port}")
    chains.append(_chain("dns_redirect", "type nat hook prerouting priority dstnat; policy accept;",
                         redirects))
    if net.masquerade:
        chains.append(_chain("nat_out", "type nat hook postrouting priority srcnat; policy accept;",
                             [f"oifname {wan} masquerade"]))
    chains.append(_chain("input", "type filter hook input priority filter; policy drop;",
                         input_rules(config, lan, wan, dns_port)))
    chains.append(_chain("forward", "type filter hook forward priority filter; policy drop;", [
        "ct state invalid drop",
        f"iifname {lan} oifname {wan} jump lan_egress",
        f"iifname {wan} oifname {lan} ct state established,related accept",
        f"iifname {wan} jump drop_inbound",
        "jump drop_not_allowed"]))
    chains.append(_chain("lan_egress", "", _egress_rules(config, Judge(policy))))
    chains.append(_chain("output", "type filter hook output priority filter; policy drop;",
                         output_rules(config, policy.egress, lan, wan)))

    counters = [f"  counter {nft_name(r)}{suffix} {{\n  }}" for r in (*DROP_REASONS, *LOG_REASONS)
                for suffix in ("", "_unlogged")]
    table = f"inet {fw.table}"
    body = "\n".join([*counters, *sets, *chains])
    return f"table {table}\ndelete table {table}\ntable {table} {{\n{body}\n}}\n"


def _addr_sets(stem: str, addresses: list, interval: bool) -> list[str]:
    out = []
    for version, family in ((4, "ipv4_addr"), (6, "ipv6_addr")):
        elements = sorted({str(a) for a in addresses if a.version == version})
        flags = "\n    flags interval\n    auto-merge" if interval else ""
        items = f"\n    elements = {{ {', '.join(elements)} }}" if elements else ""
        out.append(f"  set {stem}_v{version} {{\n    type {family}{flags}{items}\n  }}")
    return out


def _svc_sets(stem: str, pairs: list[tuple]) -> list[str]:
    out = []
    for version, family in ((4, "ipv4_addr"), (6, "ipv6_addr")):
        elements = sorted({f"{addr} . {proto} . {port}" for addr, (proto, port) in pairs
                           if addr.version == version})
        items = f"\n    elements = {{ {', '.join(elements)} }}" if elements else ""
        out.append(f"  set {stem}_v{version} {{\n    type {family} . inet_proto . inet_service\n"
                   f"    flags interval{items}\n  }}")
    return out


def _reason_chain(reason: str, group: int, rate: int, drop: bool) -> str:
    """Counted exactly; logged up to the rate; what is over the rate is counted apart, so
    kernel count = logged + unlogged, always."""
    name, verdict = ("drop_" if drop else "log_") + nft_name(reason), "drop" if drop else "return"
    return _chain(name, "", [
        f"counter name {nft_name(reason)}",
        f"limit rate over {rate}/second burst {rate} packets counter name "
        f"{nft_name(reason)}_unlogged {verdict}",
        f'log prefix "{PREFIX}{reason} " group {group}',
        verdict])


def _chain(name: str, header: str, rules: list[str]) -> str:
    lines = [f"  chain {name} {{"] + ([f"    {header}"] if header else []) + [f"    {r}" for r in rules]
    return "\n".join(lines + ["  }"])


def _per_family(match: str, stem: str, verdict: str) -> list[str]:
    return [f"ip daddr {match}@{stem}_v4 {verdict}", f"ip6 daddr {match}@{stem}_v6 {verdict}"]


def _egress_rules(config: Config, judge: Judge) -> list[str]:
    """The judge's word on addresses, as sets: bypasses always dropped, vendors dropped or
    (audit) logged, and in isolate only the allowlist accepted."""
    fw, rules = config.firewall, []
    if config.network.ipv6 == "off":
        rules.append("meta nfproto ipv6 jump drop_ipv6")
    rules.append("meta l4proto { tcp, udp } th dport 853 jump drop_dot")
    if not fw.quic:
        rules.append("udp dport 443 jump drop_quic")
    rules += _per_family("", "bypass", "jump drop_bypass_address")
    rules += _per_family("", "learned_bypass", "jump drop_bypass_address")
    if not judge.enforces("vendor"):
        rules += _per_family("", "vendor", "jump log_audit_vendor")
        rules += _per_family("", "learned_vendor", "jump log_audit_vendor")
    else:
        rules += _per_family("", "vendor", "jump drop_vendor_address")
        rules += _per_family("", "learned_vendor", "jump drop_vendor_learned")
    rules.append("ct state established,related accept")
    if judge.mode != "isolate":
        return rules + ["accept"]
    rules += _per_family("", "allow", "accept") + _per_family("", "learned_allow", "accept")
    for stem in ("allow_svc", "learned_allow_svc"):
        rules += [f"ip daddr . meta l4proto . th dport @{stem}_v4 accept",
                  f"ip6 daddr . meta l4proto . th dport @{stem}_v6 accept"]
    return rules + ["jump drop_not_allowed"]
