"""Allowlist entries: 'DESTINATION [tcp/PORTS] [udp/PORTS]', parsed once (by the policy).

DESTINATION is an address, a network (CIDR) or a name (with everything under it);
PORTS is a comma list of ports and ranges ("80,443", "8000-8100"). No protocol
means every port of every protocol.
"""
from __future__ import annotations

import ipaddress
from typing import NamedTuple

PROTOCOLS = ("tcp", "udp")


class AllowError(ValueError):
    pass


class Allow(NamedTuple):
    destination: str                          # the network or the name, normalized
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    services: tuple[tuple[str, str], ...]     # (protocol, "port" or "lo-hi"); () = everything

    @property
    def name(self) -> str | None:
        return None if self.network else self.destination


def parse_allow(text: str) -> Allow:
    words = text.split()
    if not words:
        raise AllowError("empty entry")
    destination, services = words[0], []
    try:
        network = ipaddress.ip_network(destination, strict=False)
        destination = str(network)
    except ValueError:
        network = None
        destination = destination.rstrip(".").lower()
        labels = destination.split(".")
        if len(labels) < 2 or not all(l and all(c.isalnum() or c in "-_" for c in l) for l in labels):
            raise AllowError(f"{words[0]!r} is neither an address, a network nor a domain name") from None
    for word in words[1:]:
        proto, sep, ports = word.partition("/")
        if proto not in PROTOCOLS or not sep:
            raise AllowError(f"{word!r} is not tcp/PORTS or udp/PORTS")
        services += [(proto, _port(p, word)) for p in ports.split(",")]
    return Allow(destination, network, tuple(services))


def _port(text: str, word: str) -> str:
    low, _, high = text.partition("-")
    try:
        bounds = [int(low), int(high or low)]
    except ValueError:
        raise AllowError(f"{word!r}: {text!r} is not a port or a range") from None
    if not 0 < bounds[0] <= bounds[1] < 65536:
        raise AllowError(f"{word!r}: {text!r} is not a port (1-65535) or an increasing range")
    return str(bounds[0]) if bounds[0] == bounds[1] else f"{bounds[0]}-{bounds[1]}"


class AllowNames:
    """The allowlist's names: a name matches its entry or any name under it."""

    def __init__(self, allows) -> None:
        self.entries = {a.name: a for a in allows if a.name}

    def __call__(self, name: str) -> Allow | None:
        while name:
            entry = self.entries.get(name)
            if entry is not None:
                return entry
            name = name.partition(".")[2]
        return None


def serves(entry: Allow, proto: str, port: int) -> bool:
    """Whether an entry lets `proto`/`port` through (no services: every port)."""
    return not entry.services or grants(entry.services, proto, port)


def grants(services, proto: str, port: int) -> bool:
    return any(p == proto and _in_range(port, r) for p, r in services)


def _in_range(port: int, spec: str) -> bool:
    low, _, high = spec.partition("-")
    return int(low) <= port <= int(high or low)
