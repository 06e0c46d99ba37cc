"""Offline verification of a log directory: the chain, then the signed checkpoints.

Needs nothing but the files (and, to prove authenticity, the public key obtained
from somewhere other than the log itself). One pass over the files, in constant
memory whatever the log's size: the checkpoints are read first (a line per interval),
then each record is checked against its predecessor and the checkpoint that signs it.

Three outcomes (`Report.outcome`), with the exit codes of `gcsguard review verify`:
  VERIFIED      every record is covered by a checkpoint signed with a trusted key (a
                running appliance's tail, shorter than twice the checkpoint interval,
                excepted and noted)
  BROKEN        the first broken record, by file, line and record number, and what was
                done to it: edited, deleted, reordered, inserted, truncated tail, rewritten
  UNVERIFIABLE  nothing to verify it with: no records, no trusted key, no checkpoint, or
                an unsigned tail longer than twice the checkpoint interval
"""
from __future__ import annotations

import json
import os
from array import array
from dataclasses import dataclass, field
from typing import Any, Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..events.clock import parse_rfc3339
from . import chain, signing
from .holes import Holes

VERIFIED, BROKEN, UNVERIFIABLE = "VERIFIED", "BROKEN", "UNVERIFIABLE"
EXIT_CODES = {VERIFIED: 0, BROKEN: 1, UNVERIFIABLE: 3}    # 2 is a usage error
DEFAULT_EVERY = 300.0          # the config's default checkpoint interval, for checkpoints without it
PROGRESS_STEP = 1 << 20


@dataclass
class Problem:
    kind: str          # edited | deleted | reordered | inserted | truncated | rewritten | torn
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
    first_time: str = ""
    last_time: str = ""
    checkpoints_ok: int = 0
    duplicates: int = 0           # a collector's copy: lines delivered twice, dropped
    signed_n: int = 0             # the newest record a valid checkpoint covers
    signed_time: str = ""
    problems: list[Problem] = field(default_factory=list)    # tampering: BROKEN
    unverifiable: list[str] = field(default_factory=list)    # why it cannot be VERIFIED
    losses: list[str] = field(default_factory=list)          # records the log says it lost
    gaps: list[str] = field(default_factory=list)            # times no daemon was recording
    notes: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return BROKEN if self.problems else UNVERIFIABLE if self.unverifiable else VERIFIED

    @property
    def ok(self) -> bool:
        return self.outcome == VERIFIED


@dataclass
class _Checkpoints:
    signed: dict[int, tuple[str, str]] = field(default_factory=dict)   # n -> (head, where)
    every: float | None = None      # the interval the newest valid checkpoint declares


def verify(directory: str, pubkey: Ed25519PublicKey | signing.Keyring | None = None,
           checkpoints_path: str | None = None, anchor: tuple[int, str] | None = None,
           signed_head: tuple[int, str] | None = None, every: float | None = None,
           progress: Callable[[int], Any] | None = None, copy: bool = False) -> Report:
    """`pubkey`: one trusted key, or a keyring (a log spanning a key rotation). `anchor`:
    (n, prev) where an excerpt of the chain is known to start, and `signed_head`: (n, hash)
    of a record known to be signed (an export's signed manifest says both); without an
    anchor a log must start at the genesis or a log.pruned record. `every`: the checkpoint
    interval, where the checkpoints do not declare it. `progress(bytes)` as files are read.
    `copy`: the directory is a collector's copy, where a shipper may deliver a line twice
    after a crash; a line identical to the record already read with its n is dropped and
    counted, anything else with that n is still an insertion."""
    report = Report()
    if not os.path.isdir(directory):
        report.unverifiable.append(f"{directory}: no such directory")
        return report
    if isinstance(pubkey, Ed25519PublicKey):
        pubkey = signing.Keyring([pubkey])
    if pubkey is None:
        report.unverifiable.append("no trusted public key: the checkpoints cannot be authenticated "
                                   "(pass --pubkey with a copy kept off the box)")
        if os.path.exists(os.path.join(directory, "pubkey.pem")):
            pubkey = signing.Keyring.load([os.path.join(directory, "pubkey.pem")])
            report.notes.append("checkpoint signatures checked with the log's own pubkey.pem: "
                                "this finds tampering, but proves no origin")
    checkpoints = _read_checkpoints(checkpoints_path or os.path.join(directory, chain.CHECKPOINTS),
                                    pubkey, report)
    if signed_head is not None:
        checkpoints.signed.setdefault(signed_head[0], (signed_head[1], "the signed manifest"))
    _Walk(directory, report, checkpoints, anchor, progress, copy).run()
    if report.duplicates:
        report.notes.append(f"{report.duplicates} lines delivered twice by the shipper, each "
                            "identical to the record read before it, were dropped")
    _judge_coverage(report, checkpoints, every)
    return report


def _read_checkpoints(path: str, keyring: signing.Keyring | None, report: Report) -> _Checkpoints:
    name, found = os.path.basename(path), _Checkpoints()
    try:
        with open(path, "rb") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        lines = []
    for number, raw in enumerate(lines, 1):
        where = f"{name}:{number}"
        try:
            cp = json.loads(raw)
            n, head = cp["n"], cp["head"]
        except (ValueError, KeyError, TypeError):
            report.problems.append(Problem("rewritten", where, "not a valid checkpoint"))
            continue
        why = keyring.check(cp) if keyring is not None else "no key to check it with"
        if why:
            if keyring is not None:
                report.problems.append(Problem("rewritten", where, f"checkpoint for record {n}: {why}"))
            continue
        found.signed[n] = (head, where)
        found.every = cp.get("every", found.every)
    return found


class _Walk:
    """One pass over the chain files, keeping only what the next record is checked against."""

    def __init__(self, directory: str, report: Report, checkpoints: _Checkpoints,
                 anchor: tuple[int, str] | None, progress: Callable[[int], Any] | None,
                 copy: bool = False) -> None:
        self.directory, self.report, self.signed = directory, report, checkpoints.signed
        self.anchor, self.progress = anchor, progress or (lambda n: None)
        self.files = chain.log_files(directory)
        self.prev_hash: str | None = None
        self.prev_where = ""
        self.expected_n: int | None = None
        self.pruned_heads: dict[int, str] = {}     # through_n -> through_head, from log.pruned
        self.start: tuple[int, str] | None = None  # where the log begins, if not at the genesis
        self.holes = Holes(report.gaps, report.losses)
        self.unread = 0
        # a copy's records, 8 bytes of each hash by n - first n: what a second delivery must match
        self.seen: array | None = array("Q") if copy else None

    def run(self) -> None:
        r = self.report
        r.files = len(self.files)
        pending_torn: str | None = None            # a torn record in a file before the last
        for index, name in enumerate(self.files):
            for number, raw, terminated in chain.read_lines(os.path.join(self.directory, name)):
                self._count(len(raw) + terminated)
                where = f"{name}:{number}"
                if not terminated:
                    if index == len(self.files) - 1:
                        r.notes.append(f"{where}: torn final record ({len(raw)} bytes): a write "
                                       "was cut short by a crash or power loss")
                    else:
                        pending_torn = where
                    break
                try:
                    record = json.loads(raw)
                    n, prev = record["n"], record["prev"]
                except (ValueError, KeyError, TypeError):
                    return self._problem("edited", where, "not a valid log record")
                if pending_torn is not None:
                    if record.get("type") != "log.torn_tail" or \
                            (record.get("details") or {}).get("file") != pending_torn.split(":")[0]:
                        return self._problem("torn", pending_torn,
                                             "unterminated record in the middle of the log")
                    r.notes.append(f"{pending_torn}: torn record acknowledged by {where}")
                    pending_torn = None
                if self._delivered_twice(n, raw):
                    continue
                if not self._links(n, prev, where):
                    return
                self._accept(n, raw, record, where)
        self.progress(self.unread)
        if self.start is not None and self.start == self.anchor:
            r.notes.append(f"the excerpt starts at record {self.start[0]}, as its manifest says")
        elif self.start is not None and self.pruned_heads.get(self.start[0] - 1) != self.start[1]:
            self._problem("deleted", f"record {self.start[0]}",
                          f"the log starts at record {self.start[0]} but no log.pruned record "
                          f"accounts for records 1..{self.start[0] - 1}")

    def _delivered_twice(self, n: int, raw: bytes) -> bool:
        if self.seen is None or self.expected_n is None or not isinstance(n, int) or n >= self.expected_n:
            return False
        index = n - self.report.first_n
        if 0 <= index < len(self.seen) and self.seen[index] == _short(chain.line_hash(raw)):
            self.report.duplicates += 1
            return True
        return False

    def _count(self, size: int) -> None:
        self.unread += size
        if self.unread >= PROGRESS_STEP:
            self.progress(self.unread)
            self.unread = 0

    def _problem(self, kind: str, where: str, message: str) -> None:
        self.report.problems.append(Problem(kind, where, message))

    def _links(self, n: int, prev: str, where: str) -> bool:
        """Does record n follow the one before? Names the first that does not."""
        expected = self.expected_n
        if expected is None:
            if (n, prev) != (1, chain.GENESIS):
                self.start = (n, prev)
                if self.start != self.anchor:
                    self.report.notes.append(f"{where}: log starts at record {n}; records "
                                             "before it must have been pruned")
        elif n > expected:
            later = _find_n(self.directory, self.files, expected)
            if later:
                self._problem("reordered", where, f"record {n} appears where record {expected} "
                              f"belongs (record {expected} is later, at {later})")
            else:
                self._problem("deleted", where, f"record {n} follows record {expected - 1}: "
                              f"records {expected}..{n - 1} are missing")
            return False
        elif n < expected:
            self._problem("inserted", where, f"a second record {n} (the first is at "
                          f"{_find_n(self.directory, self.files, n) or '?'}): one of them was inserted")
            return False
        elif prev != self.prev_hash:
            self._problem("edited", self.prev_where, f"record {n - 1} was altered: its hash no "
                          f"longer matches the prev field of record {n} ({where})")
            return False
        return True

    def _accept(self, n: int, raw: bytes, record: dict, where: str) -> None:
        r = self.report
        self.prev_hash, self.prev_where = chain.line_hash(raw), where
        self.expected_n = n + 1
        r.records += 1
        r.last_n, r.last_time = n, record.get("time", "")
        r.first_n, r.first_time = r.first_n or n, r.first_time or r.last_time
        if self.seen is not None:
            self.seen.append(_short(self.prev_hash))
        signed = self.signed.get(n)
        if signed is not None:
            if signed[0] != self.prev_hash:
                self._problem("rewritten", where, f"record {n} differs from the one signed in "
                              f"checkpoint {signed[1]}")
            else:
                r.checkpoints_ok += 1
                r.signed_n, r.signed_time = n, r.last_time
        kind = record.get("type", "")
        if kind == "log.pruned":
            d = record.get("details") or {}
            self.pruned_heads[d.get("through_n")] = d.get("through_head")
        elif self.holes.wants(kind):
            self.holes.see(kind, record, where)


def _short(line_hash: str) -> int:
    return int(line_hash[:16], 16)


def _find_n(directory: str, files: list[str], n: int) -> str:
    """Where record n first is, anywhere in the log ('' if nowhere): tells reordered from
    deleted (a second pass, made only once the log is known broken)."""
    for name in files:
        for number, raw, _ in chain.read_lines(os.path.join(directory, name)):
            try:
                if json.loads(raw).get("n") == n:
                    return f"{name}:{number}"
            except (ValueError, AttributeError):
                continue
    return ""


def _judge_coverage(report: Report, checkpoints: _Checkpoints, every: float | None) -> None:
    """What the signed checkpoints cover of the records read."""
    if report.problems:
        return
    beyond = [n for n in checkpoints.signed if n > report.last_n]
    if beyond:
        n = min(beyond)
        report.problems.append(Problem("truncated", checkpoints.signed[n][1],
            f"a signed checkpoint covers record {n} but the log ends at record {report.last_n}"))
        return
    if not report.records:
        report.unverifiable.append("the log holds no records")
        return
    checked_n = report.signed_n
    if not checked_n:
        report.unverifiable.append("no signed checkpoint covers any record: the log cannot "
                                   "be authenticated")
        return
    if checked_n == report.last_n:
        return
    interval = checkpoints.every or every or DEFAULT_EVERY
    try:
        span = parse_rfc3339(report.last_time) - parse_rfc3339(report.signed_time)
    except (ValueError, TypeError):
        span = float("inf")
    tail = f"records {checked_n + 1}..{report.last_n} come after the last signed checkpoint"
    if span > 2 * interval:
        report.unverifiable.append(f"{tail}, spanning {span:.0f} s: more than twice the checkpoint "
                                   f"interval ({interval:g} s) allows, so they cannot be "
                                   "authenticated (a cut or rewritten tail looks like this)")
    else:
        report.notes.append(f"{tail} ({span:.0f} s, within twice the {interval:g} s interval: "
                            "a running appliance's tail)")

