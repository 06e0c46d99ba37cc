"""HTTPDNS by its shape: a plain-HTTP request that asks some server to resolve a name.

HTTPDNS SDKs (Tencent, Aliyun, Baidu, ...) and DoH's JSON and wire forms use many paths:
`/d?dn=`, `/{account}/d?host=`, `/v2/0/resolve?dn=`, `/resolve?name=`, `/dns-query?dns=`
(`../shared/reference/vendor-endpoints.md` §6). A fixed path list misses the next one,
so a request is HTTPDNS when a name-like query parameter carries a domain-name-shaped
value, or when its path is a DoH form, whatever the host.
"""
from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

# Parameters SDKs and DoH JSON APIs put the asked name in.
NAME_PARAMETERS = frozenset({"dn", "host", "hosts", "hostname", "name", "domain", "domains",
                             "qname"})
# Paths that are a DNS API whatever their parameters (DoH's wire form carries no name).
DNS_PATHS = ("/dns-query", "/resolve", "/dns-resolve", "/multi_dns_resolve")
_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def asked_name(target: str) -> str | None:
    """The name a request asks to resolve ('' for a DoH path without a readable name), or
    None when the request is not HTTPDNS."""
    url = urlsplit(target)
    for key, value in parse_qsl(url.query, keep_blank_values=True):
        if key.lower() in NAME_PARAMETERS:
            for candidate in value.split(","):          # batch forms: dn=a.example,b.example
                if domain_shaped(candidate):
                    return candidate.strip().rstrip(".").lower()
    path = url.path.rstrip("/").lower()
    if path.endswith(DNS_PATHS):
        return ""
    return None


def domain_shaped(text: str) -> bool:
    """Two or more host-name labels and an alphabetic (or IDNA) top-level label: a name an
    SDK would resolve, not a number, a word or an address."""
    name = text.strip().rstrip(".").lower()
    labels = name.split(".")
    if len(labels) < 2 or len(name) > 253:
        return False
    if not all(0 < len(label) < 64 and set(label) <= _LABEL_CHARS for label in labels):
        return False
    top = labels[-1]
    return top.isalpha() or top.startswith("xn--")
