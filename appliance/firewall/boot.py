"""Fail-closed boot and the one explicit way to open: `gcsguard firewall boot | open`."""
from __future__ import annotations

import os

from .nft import Nft

BOOT_FILE = os.path.join(os.path.dirname(__file__), "boot.nft")


def boot_ruleset(table: str = "gcsguard") -> str:
    with open(BOOT_FILE) as f:
        text = f.read()
    return text.replace("inet gcsguard", f"inet {table}")


def load_boot(table: str = "gcsguard", nft: Nft | None = None) -> None:
    (nft or Nft()).run(boot_ruleset(table))


def open_firewall(table: str = "gcsguard", nft: Nft | None = None) -> bool:
    """Remove our table (add-then-delete never fails on an absent table); True if it existed."""
    nft = nft or Nft()
    existed = f"table inet {table}" in nft.run("list tables")
    nft.run(f"table inet {table}\ndelete table inet {table}\n")
    return existed
