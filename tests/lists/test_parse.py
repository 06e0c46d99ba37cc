import ipaddress

import pytest

from appliance.lists.parse import (LineError, header_field, normalize_domain, parse_domain_entries,
                                   parse_ip_entry, strip_comment)


@pytest.mark.parametrize("line, expected", [
    ("example.com", [("example.com", False)]),
    ("Example.COM.", [("example.com", False)]),
    ("||tracker.example.com^", [("tracker.example.com", False)]),
    ("||tracker.example.com^$important", [("tracker.example.com", False)]),
    ("*.cdn.example.com", [("cdn.example.com", True)]),
    ("0.0.0.0 a.example b.example", [("a.example", False), ("b.example", False)]),
    ("127.0.0.1 localhost", []),
    (":: ads.example", [("ads.example", False)]),
    ("bücher.example", [("xn--bcher-kva.example", False)]),
    ("xn--bcher-kva.example", [("xn--bcher-kva.example", False)]),
    ("_dmarc.example.com", [("_dmarc.example.com", False)]),
])
def test_formats(line, expected):
    assert parse_domain_entries(line) == expected


@pytest.mark.parametrize("line, why", [
    ("@@||good.example^", "allowlist"),
    ("||example.com^$third-party", r"\$third-party"),
    ("||example.com/path^", "whole-domain"),
    ("10.1.2.3 host.example", "sink address"),
    ("exa mple..com", "sink address"),
    ("bad..example", "not a valid domain"),
    ("-lead.example", "not a valid domain"),
    ("a" * 64 + ".example", "not a valid domain"),
])
def test_bad_lines_say_why(line, why):
    with pytest.raises(LineError, match=why):
        parse_domain_entries(line)


def test_comments_and_headers():
    assert strip_comment("# vendor: DJI") == ""
    assert strip_comment("! adblock comment") == ""
    assert strip_comment("[Adblock Plus 2.0]") == ""
    assert strip_comment("  dji.com   # flight logs") == "dji.com"
    assert header_field("# vendor: DJI") == ("vendor", "DJI")
    assert header_field("# category:  sdk ") == ("category", "sdk")
    assert header_field("# something: else") is None


def test_ip_entries():
    assert parse_ip_entry("203.0.113.7") == ipaddress.ip_network("203.0.113.7/32")
    assert parse_ip_entry("2001:db8::/32") == ipaddress.ip_network("2001:db8::/32")
    assert parse_ip_entry("198.51.100.9/24") == ipaddress.ip_network("198.51.100.0/24")
    with pytest.raises(LineError, match="not an IP"):
        parse_ip_entry("dji.com")


def test_total_length_limit():
    name = ".".join(["a" * 60] * 5)
    with pytest.raises(LineError):
        normalize_domain(name)
