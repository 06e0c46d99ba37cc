"""`gcsguard review`: offline review and verification of a copy of the logs."""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from ..evlog import signing
from ..evlog.verify import verify
from .devices import DEVICE_COLUMNS, TIMELINE_COLUMNS, devices, timeline
from .output import EVENT_COLUMNS, event_row, write
from .query import Filter, records, summarize

SUBCOMMANDS = ("show", "verify", "devices", "timeline", "pcap", "export", "verify-bundle", "report")


def log_directory(path: str) -> str:
    """A directory that holds a gcsguard log: anything else is an error, never an empty
    (and so 'intact', or 'clean') answer."""
    import os
    from ..evlog.chain import log_files
    if not os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{path}: no such directory")
    if not log_files(path):
        raise argparse.ArgumentTypeError(f"{path}: holds no gcsguard log (no events-*.jsonl files)")
    return path


def log_source(path: str) -> str:
    """A log directory, or an exported bundle file."""
    import os
    return path if os.path.isfile(path) else log_directory(path)


def add_review_parser(sub: argparse._SubParsersAction, with_config) -> None:
    review = sub.add_parser("review", help="review or verify a copy of the logs offline",
                            description="Review a log directory offline. `gcsguard review DIR` "
                            "is short for `gcsguard review show DIR`.")
    rsub = review.add_subparsers(dest="review_command", required=True, metavar="SUBCOMMAND")
    p = rsub.add_parser("show", help="filter, list and summarize events",
                        description="List or summarize the events of a log directory.")
    p.add_argument("directory", type=log_directory)
    p.add_argument("--from", dest="since", type=_time, help="start time (RFC 3339 or YYYY-MM-DD), inclusive")
    p.add_argument("--to", dest="until", type=_time, help="end time, exclusive")
    p.add_argument("--device", default="", help="device id (mac:...), inventory name or IP")
    p.add_argument("--vendor", default="")
    p.add_argument("--action", default="", help="allow, block, redirect, log, info, error")
    p.add_argument("--type", default="", help="event type, or a prefix ending in '.' (dns.)")
    p.add_argument("--name", default="", help="glob on the name, e.g. '*.dji.com'")
    p.add_argument("--summary", choices=("vendor", "device", "hour", "type"),
                   help="counts per vendor, device, hour or type instead of events")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.set_defaults(func=cmd_show)
    p = rsub.add_parser("verify", help="check the hash chain and signed checkpoints",
                        description="Verify a log directory: names the first broken record and "
                        "what was done (edited, deleted, inserted or reordered, truncated, "
                        "rewritten). Exit 0 if intact, 1 if not.")
    p.add_argument("directory", type=log_directory)
    p.add_argument("--pubkey", action="append", help="trusted public key (PEM) to authenticate the "
                   "checkpoints; repeat it for a log that spans a key rotation")
    p.add_argument("--checkpoints", help="a copy of checkpoints.jsonl kept off the box")
    p.set_defaults(func=cmd_verify)
    p = rsub.add_parser("devices", help="every device: first and last seen, what it attempted",
                        description="List the devices in a log (by MAC, or address while the MAC "
                        "was unknown) with first and last seen, DNS queries, blocked attempts, "
                        "allowed flows, direct-IP attempts and bytes sent. With -c, the "
                        "inventory's names, and its devices never seen.")
    p.add_argument("directory", type=log_directory)
    p.add_argument("-c", "--config", help="a config whose [devices] inventory names the devices")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.set_defaults(func=cmd_devices)
    p = rsub.add_parser("timeline", help="one device's DNS, drops, flows and leases, in order",
                        description="Interleave one device's records: its DNS queries, blocked "
                        "attempts, allowed flows (bytes), bypass attempts and leases.")
    p.add_argument("directory", type=log_directory)
    p.add_argument("--device", required=True, help="device id (mac:...), inventory name or IP")
    p.add_argument("--from", dest="since", type=_time)
    p.add_argument("--to", dest="until", type=_time)
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.set_defaults(func=cmd_timeline)
    p = rsub.add_parser("pcap", help="extract logged packets into one pcap for Wireshark",
                        description="Copy the packets behind the selected events into one pcap "
                        "(LINKTYPE_RAW), checking each against the SHA-256 its signed event "
                        "carries. Exit 1 if any packet is missing or altered.")
    p.add_argument("directory", type=log_directory)
    p.add_argument("--pcap-dir", help="where the pcap files are (default: DIRECTORY/pcap)")
    p.add_argument("--device", default="")
    p.add_argument("--from", dest="since", type=_time)
    p.add_argument("--to", dest="until", type=_time)
    p.add_argument("--out", required=True, help="the pcap file to write")
    p.set_defaults(func=cmd_pcap)
    p = with_config(rsub.add_parser(
        "export", help="one signed bundle of a period's evidence, for an auditor",
        description="Write a bundle (tar.gz) with the period's log files and signed checkpoints, "
        "the pcap files its events point to, the config and lists, the verification runs, the "
        "public key, and a manifest of SHA-256 sums signed with the log key. Run on the "
        "appliance, as root."))
    p.add_argument("--from", dest="since", type=_time, required=True)
    p.add_argument("--to", dest="until", type=_time, required=True)
    p.add_argument("--out", required=True, help="the bundle to write (.tar.gz)")
    p.set_defaults(func=cmd_export)
    p = rsub.add_parser("verify-bundle", help="check an exported bundle, offline",
                        description="Check a bundle with nothing but it and the appliance's public "
                        "key: the signed manifest, every member's SHA-256, the log chain and its "
                        "checkpoints, the packets. Names every missing, added or altered part. "
                        "Exit 0 if intact, 1 if not.")
    p.add_argument("bundle")
    p.add_argument("--pubkey", action="append", help="the appliance's public key (PEM), from a copy "
                   "kept elsewhere; repeat it with the old keys across a key rotation")
    p.set_defaults(func=cmd_verify_bundle)
    p = rsub.add_parser("report", help="the isolation report for a period (HTML, and PDF)",
                        description="State whether no data left to vendor endpoints in a period, "
                        "what backs it (verification runs, log continuity, policy hashes), the "
                        "attempts by vendor, layer and device with charts, notable events, and "
                        "everything that weakens the claim. SOURCE is a log directory or an "
                        "exported bundle (checked first). Exit 0 if the claim holds (with or "
                        "without reservations), 1 if not.")
    p.add_argument("source", type=log_source, help="a log directory or a bundle from `review export`")
    p.add_argument("--from", dest="since", type=_time, help="default: the bundle's period, or all")
    p.add_argument("--to", dest="until", type=_time)
    p.add_argument("--pubkey", action="append", help="trusted public key (PEM); repeatable")
    p.add_argument("--station", default="", help="default: from the bundle or the checkpoints")
    p.add_argument("--out", required=True, help="the HTML file to write")
    p.add_argument("--pdf", help="also print it to this PDF (needs Chromium)")
    p.set_defaults(func=cmd_report)


def _time(text: str) -> float:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not RFC 3339 or YYYY-MM-DD") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()


def _keyring(args: argparse.Namespace) -> signing.Keyring | None:
    return signing.Keyring.load(args.pubkey) if args.pubkey else None


def cmd_show(args: argparse.Namespace) -> int:
    f = Filter(args.since, args.until, args.device, args.vendor, args.action, args.type, args.name)
    rows = (r for r in records(args.directory) if f.matches(r))
    if args.summary:
        write(summarize(rows, args.summary), args.format, sys.stdout)
    elif args.format == "json":
        write(rows, "json", sys.stdout)
    else:
        write(map(event_row, rows), args.format, sys.stdout, EVENT_COLUMNS)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    report = verify(args.directory, _keyring(args), args.checkpoints)
    for note in report.notes:
        print(f"note: {note}")
    for problem in report.problems:
        print(f"BROKEN: {problem}")
    state = "INTACT" if report.ok else "NOT INTACT"
    print(f"{state}: {report.records} records (n={report.first_n}..{report.last_n}) in "
          f"{report.files} files; {report.checkpoints_ok} signed checkpoints match")
    return 0 if report.ok else 1


def cmd_devices(args: argparse.Namespace) -> int:
    inventory = {}
    if args.config:
        from ..config import load_config
        from ..policy.inventory import parse_inventory
        inventory = parse_inventory(load_config(args.config).devices.inventory)
    write(devices(records(args.directory), inventory), args.format, sys.stdout, DEVICE_COLUMNS)
    return 0


def cmd_timeline(args: argparse.Namespace) -> int:
    f = Filter(args.since, args.until)
    rows = timeline((r for r in records(args.directory) if f.matches(r)), args.device)
    write(rows, args.format, sys.stdout, TIMELINE_COLUMNS)
    return 0


def cmd_pcap(args: argparse.Namespace) -> int:
    import os

    from ..observe.evidence import extract
    f = Filter(args.since, args.until, args.device)
    refs = [(p["file"], p["index"], p["sha256"]) for r in records(args.directory) if f.matches(r)
            for p in [(r.get("details") or {}).get("pcap")] if p]
    report = extract(refs, args.pcap_dir or os.path.join(args.directory, "pcap"), args.out)
    for item in report["missing"]:
        print(f"missing: {item} (pruned, or the file was removed)", file=sys.stderr)
    for item in report["altered"]:
        print(f"ALTERED: {item} no longer matches its signed event", file=sys.stderr)
    print(f"{report['written']} of {len(refs)} packets written to {args.out}")
    return 1 if report["missing"] or report["altered"] else 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..config import load_config
    from .export import ExportError, export
    try:
        manifest = export(load_config(args.config), args.since, args.until, args.out)
    except ExportError as e:
        print(f"export: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {len(manifest['files'])} files, {manifest['records_in_period']} "
          f"records in the period, records {manifest['anchor']['n']}..{manifest['last_n']} "
          f"(key {manifest['key_id']})")
    return 0


def cmd_verify_bundle(args: argparse.Namespace) -> int:
    from .bundle import verify_bundle
    report = verify_bundle(args.bundle, _keyring(args))
    for note in report.notes:
        print(f"note: {note}")
    for problem in report.problems:
        print(f"BROKEN: {problem}")
    print(f"{'INTACT' if report.ok else 'NOT INTACT'}: {args.bundle}")
    return 0 if report.ok else 1


def cmd_report(args: argparse.Namespace) -> int:
    from .report import gather_source, render, to_pdf
    facts = gather_source(args.source, _keyring(args), args.since, args.until, args.station)
    with open(args.out, "w") as f:
        f.write(render(facts))
    print(f"{args.out}: {facts.verdict} ({len(facts.weakening)} reservations, "
          f"{len(facts.runs)} verification runs, {sum(facts.attempts.values())} attempts)")
    if args.pdf:
        try:
            to_pdf(args.out, args.pdf)
            print(f"{args.pdf}: printed by Chromium")
        except (FileNotFoundError, RuntimeError) as e:
            print(f"no PDF: {e}", file=sys.stderr)
            return 2
    return 0 if facts.verdict.startswith("supported") else 1
