"""Fail-closed boot and the one explicit way to open: `gcsguard firewall boot | open`.

The boot table is fixed (`inet gcsguard`, boot.nft): loaded by nft alone at boot, with no
config. A daemon configured with another table removes it once its own is in force."""
from __future__ import annotations

import os

from .nft import Nft

BOOT_FILE = os.path.join(os.path.dirname(__file__), "boot.nft")
BOOT_TABLE = "gcsguard"
FORWARDING = ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding")


def boot_ruleset() -> str:
    with open(BOOT_FILE) as f:
        return f.read()


def load_boot(nft: Nft | None = None) -> None:
    (nft or Nft()).run(boot_ruleset())


def set_forwarding(on: bool) -> str:
    """Forwarding on or off in this network namespace: 'on', 'off', or why it could not."""
    try:
        for path in FORWARDING:
            if os.path.exists(path):
                with open(path, "w") as f:
                    f.write("1" if on else "0")
    except OSError as e:
        return f"unchanged ({e.strerror})"
    return "on" if on else "off"


def forwarding() -> str:
    """'on' when IPv4 forwarding is, 'off' when not."""
    try:
        with open(FORWARDING[0]) as f:
            return "on" if f.read().strip() == "1" else "off"
    except OSError:
        return "unknown"


def open_firewall(table: str = "gcsguard", nft: Nft | None = None) -> bool:
    """Remove our table (add-then-delete never fails on an absent table); True if it existed."""
    nft = nft or Nft()
    existed = f"table inet {table}" in nft.run("list tables")
    nft.run(f"table inet {table}\ndelete table inet {table}\n")
    return existed
