"""The `gcsguard` command."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from . import __version__
from .config import DEFAULT_PATH, ConfigError, describe
from .evlog import signing
from .firewall.cli import add_firewall_parser, add_lists_ip_parser
from .lab.cli import add_lab_parser
from .policy import Policy, load_policy
from .policy.cli import add_lists_parser
from .review.cli import SUBCOMMANDS as REVIEW_SUBCOMMANDS
from .review.cli import add_review_parser
from .ship.cli import add_ship_parser
from .verify.cli import add_verify_parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gcsguard", description="Network-isolation verification appliance for drone "
        "ground stations: DNS sinkhole, egress enforcement and a tamper-evident log.")
    parser.add_argument("--version", action="version", version=f"gcsguard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("-c", "--config", default=os.environ.get("GCSGUARD_CONFIG", DEFAULT_PATH),
                       help=f"config file (default: $GCSGUARD_CONFIG or {DEFAULT_PATH})")
        return p

    p = with_config(sub.add_parser("run", help="run the appliance",
                                   description="Run the appliance from a config file. SIGHUP "
                                   "reloads config and lists; SIGTERM stops cleanly."))
    p.set_defaults(func=cmd_run)
    p = with_config(sub.add_parser("dns", help="run the DNS resolver alone",
                                   description="Run only the sinkhole resolver ([dns] section) with "
                                   "its event log and metrics; no other producers. SIGHUP reloads."))
    p.set_defaults(func=cmd_run, dns_only=True)
    p = with_config(sub.add_parser("gate", help="run the TLS/HTTP gate (mitmproxy, its own process)",
                                   description="Run the transparent TLS/HTTP gate: SNI and Host "
                                   "decided without decrypting. Run it as [gate] uid."))
    p.set_defaults(func=cmd_gate)
    p = with_config(sub.add_parser("check", help="validate config and lists without serving",
                                   description="Validate the config file and every list (like "
                                   "nginx -t). Prints every problem with file, line or key; "
                                   "exits 1 if there is any."))
    p.add_argument("-q", "--quiet", action="store_true", help="print problems only")
    p.set_defaults(func=cmd_check)

    add_lists_ip_parser(add_lists_parser(sub, with_config), with_config)
    add_firewall_parser(sub, with_config)
    add_verify_parser(sub, with_config)
    add_lab_parser(sub)
    p = with_config(sub.add_parser("status", help="is this station protecting as configured?",
                                   description="Mode, ruleset in force and since when, forwarding, "
                                   "the units (or the daemon), the last verification, the lists, "
                                   "the log's head and last checkpoint, the upstreams. Exit 0 when "
                                   "the station protects as its config says, 1 (naming why) when "
                                   "not."))
    p.add_argument("--json", action="store_true", help="the facts and problems as JSON")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("install", help="install or upgrade on this machine (as root)",
                       description="Install or upgrade: the venv under /opt/gcsguard, config, lists "
                       "and signing key under /etc/gcsguard (created once, never overwritten), "
                       "state and log directories, system users, the systemd units, the boot "
                       "table, the docs and /usr/local/bin/gcsguard. Never touches the ruleset "
                       "or forwarding; enables gcsguard.service only once `gcsguard check` "
                       "passes (exit 1 until then).")
    p.add_argument("--root", default="/", help="install into this directory (a scratch root)")
    p.add_argument("--no-venv", action="store_true", help="leave /opt/gcsguard/venv as it is")
    p.add_argument("--wheels", default="", help="install the venv from this bundle (built by "
                   "`gcsguard wheels` on a connected machine), with no package index")
    p.set_defaults(func=cmd_install)
    p = sub.add_parser("wheels", help="build the bundle an offline station installs from",
                       description="Download a wheel of every dependency, pinned to the versions "
                       "installed here, for each platform and Python, with their SHA-256 in "
                       "requirements.txt, plus gcsguard's wheel and source tree. On the station: "
                       "sudo python3 -m appliance.install --wheels DIR (from the unpacked source).")
    p.add_argument("--out", required=True)
    p.add_argument("--arch", action="append", choices=("x86_64", "aarch64"),
                   help="default: both")
    p.add_argument("--python", action="append", help="default: 3.11 and 3.13")
    p.set_defaults(func=cmd_wheels)
    p = sub.add_parser("uninstall", help="remove the package, keep config, keys, logs and state",
                       description="Remove the units, /opt/gcsguard and the command, and switch "
                       "forwarding off; keep /etc/gcsguard, the logs and the state unless "
                       "--purge. The ruleset stays in force until a reboot.")
    p.add_argument("--root", default="/")
    p.add_argument("--purge", action="store_true", help="also remove config, keys, logs, state "
                   "and the system users (the evidence is gone: export it first)")
    p.set_defaults(func=cmd_uninstall)

    p = sub.add_parser("keygen", help="create the log signing key pair",
                       description="Create an Ed25519 key pair for signed log checkpoints. The "
                       "private key is written 0600 and never overwritten.")
    p.add_argument("--key", required=True, help="private key path")
    p.add_argument("--pub", help="public key path (default: KEY with .pub)")
    p.set_defaults(func=cmd_keygen)

    add_review_parser(sub, with_config)
    add_ship_parser(sub, with_config)
    args = parser.parse_args(_default_review_show(sys.argv[1:] if argv is None else argv))
    try:
        return args.func(args)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


def _default_review_show(argv: list[str]) -> list[str]:
    """`gcsguard review DIR ...` means `gcsguard review show DIR ...`."""
    if "review" in argv:
        i = argv.index("review") + 1
        if i < len(argv) and argv[i] not in REVIEW_SUBCOMMANDS and argv[i] not in ("-h", "--help"):
            return [*argv[:i], "show", *argv[i:]]
    return argv


def cmd_run(args: argparse.Namespace) -> int:
    from .daemon import Appliance
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    policy = load_policy(args.config)
    if policy.failed_lists:   # fail closed: never start with a vendor list silently missing
        for r in policy.failed_lists:
            print(f"{r.path}: {r.fatal}", file=sys.stderr)
        return 2

    dns_only = getattr(args, "dns_only", False)
    if dns_only and not policy.config.dns.listen:
        print(f"{args.config}: [dns] listen is empty: nothing to run", file=sys.stderr)
        return 2

    async def serve() -> None:      # the resolver alone: no network role, never a ruleset
        await Appliance(policy, with_socket=not dns_only, with_firewall=not dns_only).serve()

    from .daemon import TaskFailed
    from .firewall.nft import NftError
    try:
        asyncio.run(serve())
    except (OSError, NftError) as e:
        print(f"{args.config}: cannot start: {e}", file=sys.stderr)
        return 2
    except ConfigError as e:
        print(f"cannot start:\n{e}", file=sys.stderr)
        return 2
    except TaskFailed as e:
        print(f"{args.config}: stopped: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import json

    from .status import gather, render
    status = gather(args.config)
    if args.json:
        print(json.dumps({"facts": dict(status.facts), "problems": status.problems}, indent=1))
    else:
        print(render(status))
    return 1 if status.problems else 0


def cmd_install(args: argparse.Namespace) -> int:
    from .install import install
    return install(args.root, venv=not args.no_venv, wheels=args.wheels)


def cmd_wheels(args: argparse.Namespace) -> int:
    from .wheels import PLATFORMS, PYTHONS, build
    missing = build(args.out, tuple(args.arch or PLATFORMS), tuple(args.python or PYTHONS))
    for item in missing:
        print(f"no wheel: {item}", file=sys.stderr)
    print(f"{args.out}: {'complete' if not missing else f'{len(missing)} wheels missing'}")
    return 1 if missing else 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    from .install import uninstall
    return uninstall(args.root, purge=args.purge)


def cmd_gate(args: argparse.Namespace) -> int:
    from .config import load_config
    from .gate.run import main as gate_main
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return gate_main(load_config(args.config))


def cmd_check(args: argparse.Namespace) -> int:
    policy = load_policy(args.config)
    problems = policy_problems(policy)
    if not args.quiet:
        print(describe(policy.config))
        print()
        for r in policy.reports:
            print(f"{r.kind:5} {r.status:13} {r.entries:>8} entries {r.bad_lines:>4} bad  {r.path}")
    for line in problems:
        print(line, file=sys.stderr)
    print(f"{'FAILED' if problems else 'OK'}: {args.config}: {len(problems)} problem(s)",
          file=sys.stderr if problems else sys.stdout)
    return 1 if problems else 0


def policy_problems(policy: Policy) -> list[str]:
    problems = []
    for r in policy.reports:
        problems += r.errors
        if r.bad_lines > len(r.errors):
            problems.append(f"{r.path}: ... and {r.bad_lines - len(r.errors)} more bad lines")
        if r.fatal:
            problems.append(f"{r.path}: {r.fatal}")
    if not any(r.kind == "block" and r.status == "loaded" for r in policy.reports):
        problems.append(f"{policy.config.path}: [lists] block: no block list loaded (a directory "
                        "is read one level deep: name vendors/, sdk/, bypass/ themselves)")
    dns = policy.config.dns
    if dns.listen and not dns.upstreams:
        problems.append(f"{policy.config.path}: [dns] upstreams: empty: only blocked names would "
                        "be answered (set upstreams, or listen = [] to run without the resolver)")
    key = policy.config.log.signing_key_file
    try:
        signing.load_private(key)
    except (OSError, ValueError) as e:
        problems.append(f"{policy.config.path}: [log] signing_key_file: {key}: "
                        f"{getattr(e, 'strerror', None) or e} (create it with gcsguard keygen)")
    return problems


def cmd_keygen(args: argparse.Namespace) -> int:
    pub = args.pub or os.path.splitext(args.key)[0] + ".pub"
    try:
        kid = signing.generate_key(args.key, pub)
    except FileExistsError:
        print(f"{args.key}: exists; not overwritten (move it away to rotate keys)", file=sys.stderr)
        return 2
    print(f"key {kid}: private {args.key} (0600), public {pub}")
    return 0
