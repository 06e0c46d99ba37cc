"""`gcsguard ship station-config | collector-config`: rsyslog's configuration, written from ours."""
from __future__ import annotations

import argparse
import os
import sys

from ..atomic import atomic_write
from .rsyslog import collector_config, station_config, work_directory


def add_ship_parser(sub, with_config) -> None:
    ship = sub.add_parser("ship", help="copy the signed log to a central collector (rsyslog, RELP)",
                          description="Write the rsyslog configuration that copies this station's "
                          "signed log and checkpoints to the collector ([ship]), or the collector's.")
    ssub = ship.add_subparsers(dest="ship_command", required=True, metavar="SUBCOMMAND")
    p = with_config(ssub.add_parser("station-config", help="this station's rsyslog drop-in, from [ship]"))
    p.add_argument("--out", help="write it here (and make rsyslog's work directory) instead of printing it")
    p.set_defaults(func=cmd_station)
    p = ssub.add_parser("collector-config", help="the central rsyslog's drop-in")
    p.add_argument("--listen", required=True, help="ADDRESS:PORT the collector takes RELP on")
    p.add_argument("--dir", required=True, help="where each station's directory is made")
    p.add_argument("--tls", nargs=3, metavar=("CA", "CERT", "KEY"), help="RELP over TLS; stations' "
                   "certificates must be signed by CA")
    p.add_argument("--forward", default="", metavar="HOST:PORT", help="also send the stream on, "
                   "RFC 5424 octet-counted over TCP, to another engine (docs/fleet.md)")
    p.add_argument("--out", help="write it here instead of printing it")
    p.set_defaults(func=cmd_collector)


def cmd_station(args: argparse.Namespace) -> int:
    from ..config import load_config
    config = load_config(args.config)
    try:
        text = station_config(config)
    except ValueError as e:
        print(f"{args.config}: {e}", file=sys.stderr)
        return 2
    return _emit(text, args.out, work_directory(config))


def cmd_collector(args: argparse.Namespace) -> int:
    tls = dict(zip(("ca_file", "cert_file", "key_file"), map(os.path.abspath, args.tls))) if args.tls else None
    try:
        text = collector_config(args.listen, os.path.abspath(args.dir), tls, args.forward)
    except ValueError as e:
        print(f"ship collector-config: {e}", file=sys.stderr)
        return 2
    return _emit(text, args.out, None)


def _emit(text: str, out: str | None, work: str | None) -> int:
    if not out:
        sys.stdout.write(text)
        return 0
    if work:
        os.makedirs(work, mode=0o750, exist_ok=True)
    atomic_write(out, text, mode=0o644)
    print(f"wrote {out}; check it with: rsyslogd -N1 -f {out}")
    return 0
