"""`gcsguard firewall boot | open | show | check` and `gcsguard lists ip ADDRESS`."""
from __future__ import annotations

import argparse
import ipaddress
import os
import sys

from ..config import load_config
from ..events.clock import rfc3339
from ..events.event import Event
from ..evlog.record import record
from .learned import LearnedAddresses, store_path
from .nft import NftError
from ..policy.cli import refuse_unloaded


def add_firewall_parser(sub, with_config) -> None:
    fw = sub.add_parser("firewall", help="the nftables ruleset: boot, open, show, check").add_subparsers(
        dest="firewall_command", required=True, metavar="SUBCOMMAND")
    p = fw.add_parser("boot", help="load the fail-closed boot table",
                      description="Load the fixed drop-forward table inet gcsguard (what "
                      "gcsguard-firewall-boot.service loads with nft alone, before any interface "
                      "comes up). Reads no config. Never weakens a table already loaded.")
    p.set_defaults(func=cmd_boot)
    p = with_config(fw.add_parser("open", help="remove gcsguard's table: traffic flows unfiltered",
                                  description="Remove gcsguard's nft table and switch forwarding "
                                  "on: the only way the network opens. Recorded in the event log "
                                  "(through the daemon, or directly when it is not running)."))
    p.add_argument("--reason", required=True, help="why, for the record")
    p.set_defaults(func=cmd_open)
    p = with_config(fw.add_parser("show", help="print the ruleset the config renders",
                                  description="Print the ruleset rendered from the config, the "
                                  "lists and the learned addresses (nothing is loaded)."))
    p.set_defaults(func=cmd_show)
    p = with_config(fw.add_parser("check", help="render and validate with nft, load nothing",
                                  description="Render the ruleset and have nft validate it "
                                  "(like nft -c). Exit 0 if valid, 1 if not."))
    p.set_defaults(func=cmd_check)


def add_lists_ip_parser(lists, with_config) -> None:
    p = with_config(lists.add_parser("ip", help="why an address is blocked or allowed",
                                     description="Show which lists hold ADDRESS and which names "
                                     "resolved to it, and when (learned addresses)."))
    p.add_argument("address")
    p.set_defaults(func=cmd_lists_ip)


def _policy_and_store(path: str):
    from ..policy import load_policy
    policy = load_policy(path)
    store = LearnedAddresses(policy.config.firewall.shared_addresses)
    store.load(store_path(policy.config.appliance.state_dir))
    return policy, store


def cmd_boot(args: argparse.Namespace) -> int:
    from .boot import BOOT_TABLE, load_boot
    try:
        load_boot()
    except NftError as e:
        print(f"firewall boot: {e}", file=sys.stderr)
        return 2
    print(f"boot table inet {BOOT_TABLE} in force: nothing is forwarded until gcsguard runs")
    return 0


def cmd_open(args: argparse.Namespace) -> int:
    from .boot import open_firewall, set_forwarding
    config = load_config(args.config)
    try:
        existed = open_firewall(config.firewall.table)
    except NftError as e:
        print(f"firewall open: {e}", file=sys.stderr)
        return 2
    forwarding = set_forwarding(True)
    from ..events.clock import Clock
    event = Event(type="firewall.opened", stamp=Clock().stamp(), action="error", reason="operator", source="cli",
                  details={"table": f"inet {config.firewall.table}", "existed": existed,
                           "forwarding": forwarding,
                           "why": args.reason, "user": os.environ.get("SUDO_USER") or
                           os.environ.get("USER", "")})
    where = record(config, [event])
    print(f"table inet {config.firewall.table} removed, forwarding {forwarding}: the network is "
          f"OPEN (recorded {where})")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    policy, store = _policy_and_store(args.config)
    if refuse_unloaded(policy):
        return 2
    from .service import ruleset_text
    sys.stdout.write(ruleset_text(policy, store))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .nft import Nft
    from .service import ruleset_text
    policy, store = _policy_and_store(args.config)
    if refuse_unloaded(policy):
        return 2
    try:
        Nft().check(ruleset_text(policy, store))
    except NftError as e:
        print(f"FAILED: the rendered ruleset: {e}", file=sys.stderr)
        return 1
    print(f"OK: the ruleset for {args.config} ({policy.config.firewall.mode}) is valid")
    return 0


def cmd_lists_ip(args: argparse.Namespace) -> int:
    try:
        address = str(ipaddress.ip_address(args.address))
    except ValueError:
        print(f"{args.address!r} is not an IP address", file=sys.stderr)
        return 2
    policy, store = _policy_and_store(args.config)
    if refuse_unloaded(policy):
        return 2
    found = False
    match = policy.lists.ips.match(address)
    if match:
        found = True
        print(f"listed {address}: in {match.entry}, vendor={match.source.vendor} "
              f"category={match.source.category} list={match.where}")
    for kind, about in store.about(address).items():
        found = True
        print(f"learned {address} as {kind}:")
        for name, seen in about["names"].items():
            print(f"  {name}  first {rfc3339(seen['first_seen'], False)}  last {rfc3339(seen['last_seen'], False)}")
    if store.conflict(address):
        print(f"shared: both blocked and allowed names resolve to it; policy "
              f"shared_addresses = {policy.config.firewall.shared_addresses}")
    if not found:
        print(f"{address}: in no IP list and never learned")
    return 0 if found else 1

