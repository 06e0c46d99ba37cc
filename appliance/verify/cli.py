"""`gcsguard verify`: one verification run, on demand or from gcsguard-verify.timer."""
from __future__ import annotations

import argparse
import json
import sys

from ..config import load_config


def add_verify_parser(sub, with_config) -> None:
    p = with_config(sub.add_parser(
        "verify", help="prove isolation holds: try every technique from a LAN-side probe",
        description="Make the probe (a network namespace linked to the appliance as a LAN "
        "interface), try every egress technique from it, and check each was blocked AND logged "
        "as the probe's attempt; the positive control (allowed_url) must get through. Results "
        "go to the log (verify.check, verify.run), to /metrics and to the results file. Needs "
        "root (it makes a network namespace). Exit 0 if every check passed, 1 if any failed, "
        "2 if the run could not be made."))
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    from .probe import ProbeError
    from .run import verify
    config = load_config(args.config)
    if not config.verify.enabled:
        print(f"{config.path}: [verify] enabled = false", file=sys.stderr)
        return 2
    try:
        results = verify(config)
    except (ProbeError, RuntimeError) as e:
        print(f"verify: {e}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(results, sys.stdout, indent=1)
        print()
    else:
        width = max(len(c["check"]) for c in results["checks"])
        for c in results["checks"]:
            line = f"{c['status'].upper():4}  {c['check']:{width}}  {c['client']}"
            print(line + (f"  -- {c['why']}" if c["why"] else ""))
        if results["note"]:
            print(f"note: {results['note']}")
        verdict = "PASSED" if results["passed"] else f"FAILED: {', '.join(results['failed'])}"
        print(f"verification {results['run']} ({results['mode']}): {verdict}; "
              f"recorded {results['recorded']}")
    return 0 if results["passed"] else 1
