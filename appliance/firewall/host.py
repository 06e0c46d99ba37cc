"""The appliance's own chains: what may reach it (input) and what it may send (output).

Part of the ruleset text (render.py assembles it); pure functions of the config.
"""
from __future__ import annotations

import ipaddress
from typing import Iterable

from ..config import Config
from ..config.endpoint import Endpoint
from ..policy.allow import Allow, parse_allow

ND = "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert }"
LINK_CHATTER = ("icmpv6 type { nd-router-solicit, mld-listener-query, mld-listener-report, "
                "mld2-listener-report }")


def listen_port(listen: tuple[str, ...], default: int) -> int:
    return Endpoint.parse(listen[0]).port if listen else default


def set_of(names: Iterable[str]) -> str:
    return "{ " + ", ".join(f'"{n}"' for n in names) + " }"


def gate_ports(config: Config) -> list[str]:
    return sorted({"80", "443", *config.gate.extra_ports}, key=int)


def input_rules(config: Config, lan: str, wan: str, dns_port: int) -> list[str]:
    net = config.network
    rules = ["iif lo accept", "ct state established,related accept", "ct state invalid drop",
             f"iifname {lan} meta l4proto {{ tcp, udp }} th dport {dns_port} ct event set 0 accept"]
    if config.gate.enabled:       # only connections the redirect brought; a direct hit would loop
        rules.append(f"iifname {lan} tcp dport {config.gate.listen_port} ct status dnat accept")
    if net.serve_dhcp:
        rules.append(f"iifname {lan} udp dport 67 accept")
    if net.serve_ntp:
        rules.append(f"iifname {lan} udp dport 123 accept")
    rules.append(f"iifname {lan} icmpv6 type nd-router-advert jump drop_rogue_ra")
    rules.append(f"{ND} accept")
    rules.append(f"{LINK_CHATTER} drop")          # hosts' own link housekeeping: not an attempt
    if net.ipv6 == "on":
        rules.append(f"iifname {wan} icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert, "
                     "nd-router-advert } accept")
    ports = sorted({listen_port((a,), 0) for a in config.metrics.listen})
    if ports:
        svc = "tcp dport { " + ", ".join(map(str, ports)) + " }"
        if net.management_interfaces:
            rules.append(f"iifname {set_of(net.management_interfaces)} {svc} accept")
        for version, nets in _by_version(net.management_networks):
            rules.append(f"{'ip' if version == 4 else 'ip6'} saddr {{ {', '.join(nets)} }} {svc} accept")
    return rules + [f"iifname {wan} jump drop_wan_input", "jump drop_input"]


def output_rules(config: Config, egress: tuple[Allow, ...], lan: str, wan: str) -> list[str]:
    """What the appliance itself may send: only what the configuration names (upstream
    resolvers, time servers, `appliance_egress`); the gate's connections meet the LAN's
    policy. Anything else is dropped and logged as appliance-egress."""
    net = config.network
    rules = ["oif lo accept", f"oifname {lan} icmpv6 type nd-router-advert drop",
             "ct state established,related accept", "ct state invalid drop",
             "ct state new ct event set 0"]      # the appliance's own flows are not devices' flows
    if config.gate.enabled:       # the gate connects on the LAN's behalf: the LAN's policy applies
        rules += [f"meta skuid {config.gate.uid} oifname {wan} jump lan_egress",
                  f"meta skuid {config.gate.uid} jump drop_appliance_egress"]
    rules += [f"oifname {lan} meta l4proto {{ icmp, icmpv6 }} accept", f"{ND} accept",
              f"ip6 daddr ff02::/16 {LINK_CHATTER} accept"]
    if net.serve_dhcp:
        rules.append(f"oifname {lan} udp sport 67 accept")
    if net.ipv6 == "on":
        rules.append(f"oifname {wan} icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert, "
                     "nd-router-solicit } accept")
    upstream = [parse_allow(f"{host} tcp/{port} udp/{port}")
                for host, port in map(Endpoint.parse, config.dns.upstreams)]
    upstream += [parse_allow(f"{n} udp/123") for n in net.ntp_servers]
    for entry in upstream:
        rules += _destination_rules(entry, f"oifname {wan} ")
    if config.ship.collector:                               # the log's copy (RELP is TCP)
        host, port = Endpoint.parse(config.ship.collector)
        egress = (*egress, parse_allow(f"{host} tcp/{port}"))
    for entry in egress:                                    # notifiers may sit on management
        rules += _destination_rules(entry, f"oifname != {lan} ")
    return rules + ["jump drop_appliance_egress"]


def _destination_rules(entry: Allow, prefix: str) -> list[str]:
    family = "ip" if entry.network.version == 4 else "ip6"
    base = f"{prefix}{family} daddr {entry.network}"
    if not entry.services:
        return [f"{base} accept"]
    by_proto: dict[str, list[str]] = {}
    for proto, port in entry.services:
        by_proto.setdefault(proto, []).append(port)
    return [f"{base} {proto} dport {{ {', '.join(ports)} }} accept" for proto, ports in by_proto.items()]


def _by_version(networks: Iterable[str]):
    parsed = [ipaddress.ip_network(n, strict=False) for n in networks]
    for version in (4, 6):
        nets = [str(n) for n in parsed if n.version == version]
        if nets:
            yield version, nets
