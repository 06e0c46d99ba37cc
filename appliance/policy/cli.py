"""`gcsguard lists`: a name's or an address's verdict, and signed offline list updates."""
from __future__ import annotations

import argparse
import os
import sys

from ..lists import ListSet
from .judge import Judge
from .load import load_policy


def add_lists_parser(sub, with_config):
    """The `lists` group; returns its subparsers (cli.py adds the firewall's `ip` there)."""
    lists = sub.add_parser("lists", help="inspect the loaded lists").add_subparsers(
        dest="lists_command", required=True, metavar="SUBCOMMAND")
    p = with_config(lists.add_parser("test", help="verdict for a name or address",
                                     description="Say whether NAME (a domain or an IP address) is "
                                     "blocked, by which list file and line, with vendor and "
                                     "category, and what the resolver does with it in the mode "
                                     "in force. Exit 0 if blocked, 1 if not, 2 on error or when "
                                     "a list did not load (no verdict on lists not in force)."))
    p.add_argument("name")
    p.set_defaults(func=cmd_lists_test)
    p = lists.add_parser("sign", help="pack and sign a directory of lists for an offline update",
                         description="Pack DIR's list files into OUT (tar.gz) and sign it (OUT.sig, "
                         "Ed25519) with a key made by `gcsguard keygen`.")
    p.add_argument("directory")
    p.add_argument("--key", required=True, help="the list-signing private key")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_lists_sign)
    p = with_config(lists.add_parser("update", help="apply a signed list bundle (offline update)",
                                     description="Verify BUNDLE against the list-signing public "
                                     "key, check every list in it, then replace the list "
                                     "directory in one step and record it in the signed log. "
                                     "A bad bundle changes nothing (exit 1). Reload the daemon "
                                     "afterwards."))
    p.add_argument("bundle")
    p.add_argument("--pubkey", required=True, help="the list-signing public key (PEM)")
    p.add_argument("--target", help="the directory to replace (default: the directory that holds "
                   "the [lists] block directories, e.g. /etc/gcsguard/blocklists)")
    p.set_defaults(func=cmd_lists_update)
    return lists


def cmd_lists_test(args: argparse.Namespace) -> int:
    policy = load_policy(args.config)
    if refuse_unloaded(policy):
        return 2
    blocked = _describe_verdict(policy.lists, args.name)
    if not _is_address(args.name):                 # and what the resolver does with it now
        verdict = Judge(policy).name(args.name.rstrip(".").lower())
        print(f"the resolver, in {policy.mode}: {verdict.action} ({verdict.reason})")
    return 0 if blocked else 1


def refuse_unloaded(policy) -> bool:
    """True (and why, on stderr) when not every list loaded: an answer from the lists that
    did would be no answer at all."""
    unloaded = policy.unloaded()
    if unloaded:
        print("cannot say: not every list loaded\n  " + "\n  ".join(unloaded), file=sys.stderr)
    return bool(unloaded)


def _is_address(text: str) -> bool:
    import ipaddress
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _describe_verdict(lists: ListSet, name: str) -> bool:
    try:
        match = lists.ips.match(name)
    except ValueError:
        match = None
    else:
        if match:
            print(f"blocked {name}: in {match.entry}, vendor={match.source.vendor} "
                  f"category={match.source.category} list={match.where}")
        else:
            print(f"not blocked {name}: in no IP list")
        return match is not None
    verdict = lists.check_name(name)
    b, a = verdict.block, verdict.allow
    if verdict.blocked:
        print(f"blocked {name}: by entry {b.entry}, vendor={b.source.vendor} "
              f"category={b.source.category} list={b.where}")
    elif a and b:
        print(f"allowed {name}: allowlist entry {a.entry} at {a.where} overrides "
              f"{b.entry} (vendor={b.source.vendor}) at {b.where}")
    elif a:
        print(f"allowed {name}: allowlist entry {a.entry} at {a.where}")
    else:
        print(f"not blocked {name}: in no list")
    return verdict.blocked


def cmd_lists_sign(args: argparse.Namespace) -> int:
    from ..lists.bundle import sign_bundle
    digest = sign_bundle(args.directory, args.key, args.out)
    print(f"signed {args.out} (sha256 {digest}); carry it with {args.out}.sig")
    return 0


def cmd_lists_update(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..events.clock import Clock
    from ..events.event import Event
    from ..evlog.record import record
    from ..lists.bundle import BundleError, apply_bundle
    config = load_config(args.config)
    directories = [p for p in config.lists.block if os.path.isdir(p)]
    target = args.target or (os.path.commonpath(directories) if len(directories) > 1 else None)
    if target is None:
        print(f"{args.config}: give --target (the directory the bundle replaces)", file=sys.stderr)
        return 2
    try:
        result = apply_bundle(args.bundle, args.pubkey, target, config.lists.max_bad_lines)
    except BundleError as e:
        print(f"REFUSED: {e}", file=sys.stderr)
        return 1
    where = record(config, [Event(type="lists.updated", stamp=Clock().stamp(), reason="offline-bundle",
                                  source="cli", details=result)])
    print(f"updated {target}: {result['files']} lists, {result['entries']} entries "
          f"(bundle sha256 {result['sha256'][:16]}, key {result['key_id']}); recorded {where}. "
          "Reload the daemon: systemctl reload gcsguard")
    return 0
