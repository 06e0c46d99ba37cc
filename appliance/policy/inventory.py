"""The device inventory: 'MAC NAME [ROLE] [EXPECTED-VENDOR]' per known device, parsed once."""
from __future__ import annotations

from typing import NamedTuple


class InventoryError(ValueError):
    pass


class Known(NamedTuple):
    mac: str
    name: str
    role: str
    expected_vendor: str


def normalize_mac(text: str) -> str:
    parts = text.lower().replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts):
        raise InventoryError(f"{text!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    return ":".join(parts)


def parse_inventory(entries) -> dict[str, Known]:
    known: dict[str, Known] = {}
    for entry in entries:
        words = entry.split()
        if len(words) < 2:
            raise InventoryError(f"{entry!r}: expected 'MAC NAME [ROLE] [EXPECTED-VENDOR]'")
        mac = normalize_mac(words[0])
        if mac in known:
            raise InventoryError(f"{entry!r}: {mac} is listed twice")
        known[mac] = Known(mac, words[1], words[2] if len(words) > 2 else "",
                           " ".join(words[3:]))
    return known
