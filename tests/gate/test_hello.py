"""Reading the ClientHello strictly: a bad server_name is never "no SNI"."""
import struct

import pytest

from appliance.gate.hello import could_be_tls, has_ech, server_name, valid_host_name


def sni_extension(*names: bytes, name_type: int = 0) -> tuple[int, bytes]:
    entries = b"".join(struct.pack("!BH", name_type, len(n)) + n for n in names)
    return 0, struct.pack("!H", len(entries)) + entries


def test_one_valid_name():
    assert server_name([sni_extension(b"API.dji.com")]) == ("api.dji.com", True)
    assert server_name([(16, b"\x00\x02h2")]) == (None, True)               # no SNI at all


@pytest.mark.parametrize("extension", [
    sni_extension(b"api.dji.com", b"www.allowed.example"),                  # two names
    sni_extension(b"api.dji\x00.com"),                                      # a NUL
    sni_extension("api.djí.com".encode()),                                  # not ASCII
    sni_extension(b"a" * 64 + b".dji.com"),                                 # a label over 63
    sni_extension(b"api.dji.com."),                                         # a trailing dot
    sni_extension(b"198.51.100.10"),                                        # an address
    sni_extension(b"api.dji.com", name_type=1),                             # not host_name
    (0, b"\x00\x09\x00\x00\x05api"),                                        # lengths disagree
    (0, b""),                                                               # empty
])
def test_a_bad_server_name_is_invalid_and_shown_escaped(extension):
    name, valid = server_name([extension])
    assert not valid and name is not None and "\x00" not in name


def test_two_server_name_extensions_are_invalid():
    assert server_name([sni_extension(b"www.allowed.example"), sni_extension(b"api.dji.com")])[1] is False


def test_host_names():
    assert valid_host_name(b"edge-1.cdn_x.example")
    assert not valid_host_name(b"") and not valid_host_name(b"x" * 254)


def test_tls_prefixes_of_any_length():
    hello = b"\x16\x03\x01\x02\x00\x01"
    assert all(could_be_tls(hello[:n]) for n in range(1, len(hello) + 1))    # 1-byte segments
    assert not could_be_tls(b"") and not could_be_tls(b"GET / HTTP/1.1")
    assert not could_be_tls(b"\x16\x02") and not could_be_tls(b"\x16\x03\x09")


def test_ech_is_seen():
    assert has_ech([(0xFE0D, b"\x00")]) and not has_ech([(0, b"")])
