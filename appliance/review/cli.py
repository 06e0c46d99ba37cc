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
    p.add_argument("-f", "--follow", action="store_true", help="keep printing records as they are "
                   "written, across rotations (from --from if given, else from now); Ctrl-C stops")
    p.set_defaults(func=cmd_show)
    p = rsub.add_parser("verify", help="check the hash chain and signed checkpoints",
                        description="Verify a log directory. VERIFIED (exit 0): every record is "
                        "covered by a checkpoint signed with a trusted key. BROKEN (exit 1): names "
                        "the first broken record and what was done (edited, deleted, inserted or "
                        "reordered, truncated, rewritten). UNVERIFIABLE (exit 3): nothing to "
                        "verify it with (a missing or empty directory, no trusted key, no "
                        "checkpoint, or an unsigned tail longer than twice the checkpoint "
                        "interval). The losses and gaps the log records are listed.")
    p.add_argument("directory")
    p.add_argument("--pubkey", action="append", help="trusted public key (PEM) to authenticate the "
                   "checkpoints; repeat it for a log that spans a key rotation")
    p.add_argument("--checkpoints", help="a copy of checkpoints.jsonl kept off the box (the "
                   "collector's: a station's log cut together with its checkpoints is found)")
    p.add_argument("--copy", action="store_true", help="DIRECTORY is a collector's copy: a line "
                   "the shipper delivered twice (identical to the record before) is dropped, counted")
    p.add_argument("--checkpoint-interval", type=float, help="seconds between checkpoints, for "
                   "logs whose checkpoints do not say (default 300, the config's default)")
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
                        "Exit 0 if VERIFIED, 1 if BROKEN, 3 if UNVERIFIABLE (no trusted key).")
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
                        "without reservations), 1 if it does not, 3 if it cannot be made (the "
                        "log is broken, unverifiable or missing). The period defaults to the "
                        "bundle's, or the log's first record to its last.")
    p.add_argument("source", nargs="+", help="a log directory or a bundle from `review "
                   "export`; several (stations' central copies): --out is a directory with "
                   "one report per station and index.html, a row per station with its claim")
    p.add_argument("--from", dest="since", type=_time, help="default: the bundle's period, or all")
    p.add_argument("--to", dest="until", type=_time)
    p.add_argument("--pubkey", action="append", help="trusted public key (PEM); repeatable")
    p.add_argument("--station", default="", help="default: from the bundle or the checkpoints")
    p.add_argument("--copy", action="store_true", help="SOURCE is a collector's copy (as `review "
                   "verify --copy`); several sources always are")
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
    if args.follow:
        if args.summary:
            print("review show: --follow lists records; it cannot summarize", file=sys.stderr)
            return 2
        from .follow import follow
        from .output import write_live
        try:
            write_live((r for r in follow(args.directory, from_start=args.since is not None)
                        if f.matches(r)), args.format, sys.stdout)
        except (KeyboardInterrupt, BrokenPipeError):
            pass
        return 0
    rows = (r for r in records(args.directory) if f.matches(r))
    if args.summary:
        write(summarize(rows, args.summary), args.format, sys.stdout)
    elif args.format == "json":
        write(rows, "json", sys.stdout)
    else:
        write(map(event_row, rows), args.format, sys.stdout, EVENT_COLUMNS)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ..evlog.verify import EXIT_CODES
    from .progress import bar, log_size
    with bar(log_size(args.directory), "verify") as progress:
        report = verify(args.directory, _keyring(args), args.checkpoints,
                        every=args.checkpoint_interval, progress=progress, copy=args.copy)
    print_verification(report, [f"gap: {g}" for g in report.gaps] + [f"loss: {l}" for l in report.losses])
    print(f"{report.outcome}: {report.records} records (n={report.first_n}..{report.last_n}) in "
          f"{report.files} files; signed through record {report.signed_n}; "
          f"{report.checkpoints_ok} signed checkpoints match")
    return EXIT_CODES[report.outcome]


def _fleet_report(args: argparse.Namespace, reports: list) -> int:
    from .fleet import write
    rows, code = write(reports, args.out)
    width = max(len(r[0]) for r in rows)
    for station, claim, log, period, reservations, *_, source in rows:
        print(f"{station:<{width}}  {claim}  [log {log}; {reservations} reservations; {period}]  {source}")
    print(f"{args.out}/index.html: {len(rows)} stations")
    return code


def print_verification(report, holes: list[str]) -> None:
    """What a log's (or a bundle's) verification found, the outcome's reasons last."""
    lines = [*holes, *(f"note: {n}" for n in report.notes),
             *(f"UNVERIFIABLE: {w}" for w in report.unverifiable),
             *(f"BROKEN: {p}" for p in report.problems)]
    for line in lines:
        print(line)


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
    from .progress import bar, log_size
    f = Filter(args.since, args.until, args.device)
    with bar(log_size(args.directory), "pcap") as progress:
        refs = [(p["file"], p["index"], p["sha256"]) for r in records(args.directory, progress)
                if f.matches(r) for p in [(r.get("details") or {}).get("pcap")] if p]
    report = extract(refs, args.pcap_dir or os.path.join(args.directory, "pcap"), args.out)
    for item in report["missing"]:
        print(f"missing: {item} (pruned, or the file was removed)", file=sys.stderr)
    for item in report["altered"]:
        print(f"ALTERED: {item} no longer matches its signed event", file=sys.stderr)
    print(f"{report['written']} of {len(refs)} packets written to {args.out}")
    return 1 if report["missing"] or report["altered"] else 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..config import load_config
    from .export import ExportError, export, period_files
    from .progress import bar, log_size
    config = load_config(args.config)
    names = period_files(config.log.directory, args.since, args.until)
    try:
        with bar(log_size(config.log.directory, names), "export") as progress:
            manifest = export(config, args.since, args.until, args.out, progress, names)
    except ExportError as e:
        print(f"export: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {len(manifest['files'])} files, {manifest['records_in_period']} "
          f"records in the period, records {manifest['anchor']['n']}..{manifest['last_n']} "
          f"(key {manifest['key_id']})")
    return 0


def cmd_verify_bundle(args: argparse.Namespace) -> int:
    from .bundle import verify_bundle
    from ..evlog.verify import EXIT_CODES
    report = verify_bundle(args.bundle, _keyring(args))
    log = report.log
    print_verification(report, [f"log: {line}" for line in (*log.gaps, *log.losses)] if log else [])
    print(f"{report.outcome}: {args.bundle}")
    return EXIT_CODES[report.outcome]


def cmd_report(args: argparse.Namespace) -> int:
    import os
    from .progress import bar, log_size
    from .report import SHOWN_PER_KIND, VERDICTS, gather_source, render, reservations_text, to_pdf

    def facts_of(source: str, station: str = "", copy: bool = args.copy):
        total = 0 if os.path.isfile(source) else log_size(source)
        with bar(2 * total, "report") as progress:       # verified, then read
            return gather_source(source, _keyring(args), args.since, args.until, station,
                                 progress=progress, copy=copy)
    if len(args.source) > 1:
        if args.pdf or args.station:
            print("--pdf and --station take one source", file=sys.stderr)
            return 2
        return _fleet_report(args, [(s, facts_of(s, copy=True)) for s in args.source])
    facts = facts_of(args.source[0], args.station)
    lists = [*facts.reservations.values(), [*facts.integrity.get("problems", []),
             *facts.integrity.get("gaps", []), *facts.integrity.get("losses", [])]]
    full_list = ""
    if any(len(texts) > SHOWN_PER_KIND for texts in lists):
        full_list = f"{args.out}.reservations.txt"
        with open(full_list, "w") as f:
            f.write(reservations_text(facts))
            f.writelines(f"{line}\n" for line in lists[-1])
    with open(args.out, "w") as f:
        f.write(render(facts, os.path.basename(full_list)))
    title, _, code = VERDICTS[facts.verdict]
    print(f"{args.out}: {facts.verdict}: {title} ({len(facts.weakening)} reservations, "
          f"{len(facts.runs)} verification runs, {sum(facts.attempts.values())} attempts)")
    for why in facts.integrity.get("problems", [])[:3]:
        print(f"  {why}")
    if args.pdf:
        try:
            to_pdf(args.out, args.pdf)
            print(f"{args.pdf}: printed by Chromium (A4)")
        except (FileNotFoundError, RuntimeError) as e:
            print(f"no PDF: {e}", file=sys.stderr)
            return 2
    return code
