"""Compact, fast lookup structures for loaded lists.

Memory matters (1,000,000 names must fit in 200 MB), so an entry is one dict
item, name -> small int (source index and a subdomains-only flag), and every
entry of a file shares that one int object. The line number of a match is found
on demand in the source's bytes (only `lists test` and first sightings need it).
Blocking a name blocks every name under it, so a lookup tries the name and then
each parent, most specific first.
"""
from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass, field

from .parse import LineError, parse_domain_entries, parse_ip_entry, strip_comment


@dataclass(frozen=True, slots=True, eq=False)
class Source:
    path: str
    vendor: str
    category: str
    kind: str            # "block" | "allow"
    type: str            # "domain" | "ip"
    sha256: str
    entries: int
    bad_lines: int
    raw: bytes = field(repr=False, default=b"")   # the bytes loaded, to find lines and to fall back to


@dataclass(frozen=True, slots=True)
class Match:
    entry: str           # the listed name or network that matched
    source: Source

    @property
    def line(self) -> int:
        return find_line(self.source, self.entry)

    @property
    def where(self) -> str:
        return f"{self.source.path}:{self.line}"


def pack(source_index: int, subdomains_only: bool = False) -> int:
    return (source_index << 1) | int(subdomains_only)


@functools.lru_cache(maxsize=4096)
def find_line(source: Source, entry: str) -> int:
    """The first line of the source that lists `entry` (0 if it cannot be found)."""
    text = source.raw.decode("utf-8", "replace")
    for number, line in enumerate(text.split("\n"), 1):
        if line.isascii() and entry.split("/")[0] not in line.lower():
            continue
        listed = strip_comment(line)
        try:
            if not listed:
                continue
            if source.type == "ip":
                if str(parse_ip_entry(listed)) == entry:
                    return number
            elif entry in (name for name, _ in parse_domain_entries(listed)):
                return number
        except LineError:
            continue
    return 0


class DomainIndex:
    def __init__(self, table: dict[str, int], sources: list[Source]) -> None:
        self.table, self.sources = table, sources

    def __len__(self) -> int:
        return len(self.table)

    def match(self, name: str) -> Match | None:
        """`name` must already be lower-case without the trailing dot."""
        table = self.table
        value = table.get(name)
        if value is not None and not value & 1:
            return self._match(name, value)
        dot = name.find(".")
        while dot >= 0:
            suffix = name[dot + 1:]
            value = table.get(suffix)
            if value is not None:
                return self._match(suffix, value)
            dot = name.find(".", dot + 1)
        return None

    def _match(self, entry: str, value: int) -> Match:
        return Match(entry, self.sources[value >> 1])

    def resolvable(self):
        """(name, source) of every entry that is itself a name (not only `*.name`)."""
        sources = self.sources
        return ((name, sources[v >> 1]) for name, v in self.table.items() if not v & 1)


_NETWORK = {4: ipaddress.IPv4Network, 6: ipaddress.IPv6Network}


class IPIndex:
    """Addresses and networks, looked up by masking with each prefix length present."""

    def __init__(self) -> None:
        self._by_len: dict[tuple[int, int], dict[int, int]] = {}   # (version, prefixlen) -> {net: packed}
        self._order: dict[int, list] | None = None
        self.sources: list[Source] = []

    def add(self, network: ipaddress.IPv4Network | ipaddress.IPv6Network, packed: int) -> None:
        key = (network.version, network.prefixlen)
        self._by_len.setdefault(key, {}).setdefault(int(network.network_address), packed)
        self._order = None

    def __len__(self) -> int:
        return sum(len(t) for t in self._by_len.values())

    def networks(self):
        """(network, source) of every entry."""
        for (version, plen), table in self._by_len.items():
            for net, packed in table.items():
                yield _NETWORK[version]((net, plen)), self.sources[packed >> 1]

    def _tables(self, version: int) -> list[tuple[int, dict[int, int]]]:
        """(prefix length, table) for one IP version, longest prefix first (cached)."""
        if self._order is None:
            self._order = {v: sorted(((plen, t) for (ver, plen), t in self._by_len.items() if ver == v),
                                     key=lambda item: -item[0]) for v in (4, 6)}
        return self._order[version]

    def match(self, address: str) -> Match | None:
        try:      # inet_pton: a fifth of ip_address's cost, and every flow and drop asks
            raw = socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)
        except OSError:                       # a scoped IPv6 address, or not an address
            raw = ipaddress.ip_address(address).packed
        return self.match_packed(raw)

    def match_packed(self, raw: bytes) -> Match | None:
        """Lookup by the 4 or 16 address bytes (as they stand in a DNS answer)."""
        version, bits = (4, 32) if len(raw) == 4 else (6, 128)
        value = int.from_bytes(raw, "big")
        for plen, table in self._tables(version):
            net = value & (((1 << plen) - 1) << (bits - plen)) if plen else 0
            packed = table.get(net)
            if packed is not None:
                return Match(_network_text(version, net, plen), self.sources[packed >> 1])
        return None


@functools.lru_cache(maxsize=4096)
def _network_text(version: int, net: int, plen: int) -> str:
    return str(_NETWORK[version]((net, plen)))
