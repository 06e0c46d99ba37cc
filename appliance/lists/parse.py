"""Parsing list lines in the formats people already have. Pure functions, no I/O.

Domain lines: plain names (`example.com`), hosts-file lines (`0.0.0.0 a.com b.com`),
AdBlock/AdGuard DNS rules (`||example.com^`, `||example.com^$important`), wildcards
(`*.example.com`: names under it, not the name itself), IDN in Unicode or punycode.
IP lines: an address or a CIDR. Comments start with `#` or `!`; `# key: value`
lines before the first entry form the header (vendor, category, type).
"""
from __future__ import annotations

import ipaddress
import re

HEADER_KEYS = ("vendor", "category", "type")
LIST_TYPES = ("domain", "ip")

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}")
_HEADER = re.compile(r"^[#!]\s*([a-z_]+)\s*:\s*(.*?)\s*$")
_HOSTS_ADDRESSES = {"0.0.0.0", "127.0.0.1", "::", "::1", "0:0:0:0:0:0:0:0", "::0"}
_HOSTS_SKIP = {"localhost", "localhost.localdomain", "local", "broadcasthost", "0.0.0.0",
               "ip6-localhost", "ip6-loopback", "ip6-localnet", "ip6-mcastprefix",
               "ip6-allnodes", "ip6-allrouters", "ip6-allhosts"}
_ADBLOCK_OK_MODIFIERS = {"important", "all", "document"}


class LineError(ValueError):
    """A line that is not a valid entry; the message says why."""


def header_field(line: str) -> tuple[str, str] | None:
    m = _HEADER.match(line)
    if m and m.group(1) in HEADER_KEYS:
        return m.group(1), m.group(2)
    return None


def strip_comment(line: str) -> str:
    """The entry part of a line ('' for blank lines and comments)."""
    line = line.strip()
    if not line or line[0] in "#!" or (line[0] == "[" and line.endswith("]")):
        return ""   # '[Adblock Plus 2.0]' style headers too
    cut = line.find(" #")
    if cut < 0:
        cut = line.find("\t#")
    return line[:cut].rstrip() if cut >= 0 else line


def normalize_domain(text: str) -> str:
    """Lower-case ASCII form of a name (punycode for IDN), without the trailing dot."""
    name = text.strip().rstrip(".").lower()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError as e:
            raise LineError(f"invalid internationalized name {text!r}: {e}") from None
    if len(name) > 253 or not _DOMAIN.fullmatch(name):
        raise LineError(f"not a valid domain name: {text!r}")
    return name


def parse_domain_entries(entry: str) -> list[tuple[str, bool]]:
    """[(name, subdomains_only)] for one non-comment line; raises LineError."""
    if entry.startswith("@@"):
        raise LineError("exception rule (@@) in a blocklist: put it in an allowlist file")
    if entry.startswith("||"):
        return [(_adblock(entry), False)]
    if entry.startswith("*."):
        return [(normalize_domain(entry[2:]), True)]
    fields = entry.split()
    if len(fields) > 1 or fields[0] in _HOSTS_ADDRESSES:
        if fields[0] not in _HOSTS_ADDRESSES:
            raise LineError(f"hosts-file line must start with a sink address "
                            f"(0.0.0.0, 127.0.0.1, ::), not {fields[0]!r}")
        return [(normalize_domain(f), False) for f in fields[1:] if f.lower() not in _HOSTS_SKIP]
    return [(normalize_domain(entry), False)]


def _adblock(entry: str) -> str:
    body, _, modifiers = entry[2:].partition("$")
    for modifier in filter(None, modifiers.split(",")):
        if modifier not in _ADBLOCK_OK_MODIFIERS:
            raise LineError(f"AdBlock modifier ${modifier} cannot be enforced by name")
    if not body.endswith("^") or any(c in body[:-1] for c in "/^*|:"):
        raise LineError("only whole-domain AdBlock rules (||example.com^) are supported")
    return normalize_domain(body[:-1])


def parse_ip_entry(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise LineError(f"not an IP address or CIDR: {entry!r}") from None
