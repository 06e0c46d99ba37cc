"""Offline verification of a log directory: the chain, then the signed checkpoints.

Needs nothing but the files (and, to prove authenticity, the public key obtained
from somewhere other than the log itself). Reports the first broken record by
file, line and record number, and classifies what was done to it:
edited, deleted, reordered, inserted, truncated tail, rewritten.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from . import chain, signing


@dataclass
class Problem:
    kind: str          # edited | deleted | reordered | inserted | truncated | rewritten | torn | unsigned
    where: str         # "file:line" or the checkpoint file
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.message}"


@dataclass
class Report:
    records: int = 0
    files: int = 0
    first_n: int = 0
    last_n: int = 0
    checkpoints_ok: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Record:
    where: str
    hash: str


def verify(directory: str, pubkey: Ed25519PublicKey | signing.Keyring | None = None,
           checkpoints_path: str | None = None, anchor: tuple[int, str] | None = None) -> Report:
    """`pubkey`: one trusted key, or a keyring (a log spanning a key rotation). `anchor`:
    (n, prev) where an excerpt of the chain is known to start (an export's signed manifest
    says so); without it a log must start at the genesis or a log.pruned record."""
    report = Report()
    by_n = _verify_chain(directory, report, anchor)
    if isinstance(pubkey, Ed25519PublicKey):
        pubkey = signing.Keyring([pubkey])
    if pubkey is None and os.path.exists(os.path.join(directory, "pubkey.pem")):
        pubkey = signing.Keyring.load([os.path.join(directory, "pubkey.pem")])
        report.notes.append("checkpoint signatures checked with the log's own pubkey.pem: this "
                            "proves integrity, not origin; pass --pubkey with a trusted copy")
    _verify_checkpoints(checkpoints_path or os.path.join(directory, chain.CHECKPOINTS),
                        pubkey, by_n, report)
    return report


def _verify_chain(directory: str, report: Report,
                  anchor: tuple[int, str] | None = None) -> dict[int, _Record]:
    files = chain.log_files(directory)
    report.files = len(files)
    by_n: dict[int, _Record] = {}
    prev_hash: str | None = None
    expected_n: int | None = None
    pruned_heads: dict[int, str] = {}      # through_n -> through_head, from log.pruned records
    pending_torn: dict[str, Any] | None = None
    start: tuple[int, str] | None = None   # set when the log does not begin at the genesis record
    for index, name in enumerate(files):
        path = os.path.join(directory, name)
        for number, raw, terminated in chain.read_lines(path):
            where = f"{name}:{number}"
            if not terminated:
                if index == len(files) - 1:
                    report.notes.append(f"{where}: torn final record ({len(raw)} bytes): a write "
                                        "was cut short by a crash or power loss")
                else:
                    pending_torn = {"file": name, "bytes": len(raw), "where": where}
                break
            try:
                record = json.loads(raw)
                n, prev = record["n"], record["prev"]
            except (ValueError, KeyError, TypeError):
                report.problems.append(Problem("edited", where, "not a valid log record"))
                return by_n
            if pending_torn is not None:
                details = record.get("details", {})
                if record.get("type") != "log.torn_tail" or details.get("file") != pending_torn["file"]:
                    report.problems.append(Problem("torn", pending_torn["where"],
                                                   "unterminated record in the middle of the log"))
                    return by_n
                report.notes.append(f"{pending_torn['where']}: torn record acknowledged by {where}")
                pending_torn = None
            if expected_n is None:
                if (n, prev) != (1, chain.GENESIS):
                    start = (n, prev)
                    if start != anchor:
                        report.notes.append(f"{where}: log starts at record {n}; records "
                                            "before it must have been pruned")
            elif n > expected_n:
                later = _find_n(directory, files, expected_n)
                if later:
                    report.problems.append(Problem("reordered", where,
                        f"record {n} appears where record {expected_n} belongs "
                        f"(record {expected_n} is later, at {later})"))
                else:
                    report.problems.append(Problem("deleted", where,
                        f"record {n} follows record {expected_n - 1}: "
                        f"records {expected_n}..{n - 1} are missing"))
                return by_n
            elif n < expected_n:
                first = by_n.get(n)
                report.problems.append(Problem("inserted", where,
                    f"a second record {n} (the first is at {first.where if first else '?'}): "
                    "one of them was inserted"))
                return by_n
            elif prev != prev_hash:
                previous = by_n.get(n - 1)
                report.problems.append(Problem("edited", previous.where if previous else where,
                    f"record {n - 1} was altered: its hash no longer matches the prev field "
                    f"of record {n} ({where})"))
                return by_n
            prev_hash = chain.line_hash(raw)
            by_n[n] = _Record(where, prev_hash)
            if record.get("type") == "log.pruned":
                d = record.get("details", {})
                pruned_heads[d.get("through_n")] = d.get("through_head")
            expected_n = n + 1
            report.records += 1
            report.last_n = n
            report.first_n = report.first_n or n
    if start is not None and start == anchor:
        report.notes.append(f"the excerpt starts at record {start[0]}, as its manifest says")
    elif start is not None and pruned_heads.get(start[0] - 1) != start[1]:
        report.problems.append(Problem("deleted", by_n[start[0]].where,
            f"the log starts at record {start[0]} but no log.pruned record accounts for "
            f"records 1..{start[0] - 1}"))
    return by_n


def _find_n(directory: str, files: list[str], n: int) -> str:
    """Where record n is, anywhere in the log ('' if nowhere): tells reordered from deleted."""
    for name in files:
        for number, raw, _ in chain.read_lines(os.path.join(directory, name)):
            try:
                if json.loads(raw).get("n") == n:
                    return f"{name}:{number}"
            except (ValueError, AttributeError):
                continue
    return ""


def _verify_checkpoints(path: str, pubkey: signing.Keyring | None,
                        by_n: dict[int, _Record], report: Report) -> None:
    name = os.path.basename(path)
    chain_broken = bool(report.problems)   # then only the part read so far can be compared
    try:
        with open(path, "rb") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        lines = []
    last_checked = 0
    for number, raw in enumerate(lines, 1):
        where = f"{name}:{number}"
        try:
            cp = json.loads(raw)
            n, head = cp["n"], cp["head"]
        except (ValueError, KeyError, TypeError):
            report.problems.append(Problem("rewritten", where, "not a valid checkpoint"))
            continue
        if pubkey is not None:
            why = pubkey.check(cp)
            if why:
                report.problems.append(Problem("rewritten", where, f"checkpoint for record {n}: {why}"))
                continue
        if n > report.last_n and chain_broken:
            continue
        if n > report.last_n:
            report.problems.append(Problem("truncated", where,
                f"a signed checkpoint covers record {n} but the log ends at record {report.last_n}"))
        elif n in by_n and by_n[n].hash != head:
            report.problems.append(Problem("rewritten", by_n[n].where,
                f"record {n} differs from the one signed in checkpoint {where}"))
        elif n in by_n:
            report.checkpoints_ok += 1
            last_checked = max(last_checked, n)
    if pubkey is not None and report.records and not report.checkpoints_ok and not report.problems:
        report.problems.append(Problem("unsigned", name,
            "no valid signed checkpoint covers any record: the log cannot be authenticated"))
    elif report.records and last_checked < report.last_n and not chain_broken:
        report.notes.append(f"records {last_checked + 1}..{report.last_n} come after the last "
                            "signed checkpoint (normal for a running appliance)")
