"""Reading a ClientHello for the gate, strictly: what is not exactly one valid host name is
not "no SNI".

mitmproxy's `ClientHello.sni` returns None both when there is no server_name extension
and when the one there does not parse (two names, a NUL, non-ASCII, an over-long
label): a relay that treats both as "no SNI" can be fooled into passing a vendor's name.
Pure functions of bytes; the addon decides with the judge.
"""
from __future__ import annotations

import struct

SERVER_NAME = 0x0000
ECH = 0xFE0D
_HOST_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def could_be_tls(data: bytes) -> bool:
    """`data` is, or begins, a TLS handshake record header (0x16, 0x03, 0x00-0x04): a
    ClientHello may still be on its way, whatever the segmentation (1-byte segments too)."""
    return (len(data) >= 1 and data[0] == 0x16 and (len(data) < 2 or data[1] == 0x03)
            and (len(data) < 3 or data[2] <= 0x04))


def server_name(extensions: list[tuple[int, bytes]]) -> tuple[str | None, bool]:
    """(name, valid): (None, True) with no server_name extension; (text, False) when the
    extension is there but does not hold exactly one valid host name."""
    found = [data for kind, data in extensions if kind == SERVER_NAME]
    if not found:
        return None, True
    if len(found) > 1:
        return _shown(found[0]), False
    data = found[0]
    try:
        (list_length,) = struct.unpack_from("!H", data, 0)
        if list_length != len(data) - 2 or list_length < 3:
            return _shown(data), False
        name_type, length = struct.unpack_from("!BH", data, 2)
        name = data[5:5 + length]
    except struct.error:
        return _shown(data), False
    if name_type != 0 or 5 + length != len(data):            # another entry follows: two names
        return _shown(name if name_type == 0 else data), False
    if not valid_host_name(name):
        return _shown(name), False
    return name.decode("ascii").lower(), True


def valid_host_name(name: bytes) -> bool:
    """RFC 6066 host_name: ASCII letters, digits, hyphens (and underscores, seen in the wild),
    labels of 1-63, at most 253 in all, no trailing dot, not an address literal."""
    if not 0 < len(name) <= 253 or name.endswith(b"."):
        return False
    labels = name.split(b".")
    if not all(0 < len(label) <= 63 and set(label) <= _HOST_CHARS for label in labels):
        return False
    return not all(label.isdigit() for label in labels)


def has_ech(extensions: list[tuple[int, bytes]]) -> bool:
    return any(kind == ECH for kind, _ in extensions)


def _shown(raw: bytes) -> str:
    """A bad name as it may go into a record: every byte but printable ASCII escaped, bounded."""
    return "".join(chr(b).lower() if 0x20 < b < 0x7F and b != 0x5C else f"\\x{b:02x}"
                   for b in raw[:255])[:255]
