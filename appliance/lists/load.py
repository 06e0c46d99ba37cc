"""Reading list files into a `ListSet`, file by file, keeping what worked before.

A bad line is reported with file:line, skipped and counted. A file fails as a
whole when it cannot be read, has no vendor/category header, or has more bad
lines than the error budget; its previous version (kept as raw bytes, the most
compact form) then stays active and the report says so.
"""
from __future__ import annotations

import functools
import gc
import hashlib
import os
from dataclasses import dataclass, field

from .index import DomainIndex, IPIndex, Match, Source, pack
from .bulk import special_lines
from .parse import (LIST_TYPES, LineError, header_field, parse_domain_entries,
                    parse_ip_entry, strip_comment)

LIST_SUFFIXES = (".list", ".txt", ".hosts", ".ips")
MAX_REPORTED_ERRORS = 20


@dataclass
class FileReport:
    path: str
    kind: str
    status: str = "loaded"             # loaded | kept-previous | failed
    sha256: str = ""
    entries: int = 0
    bad_lines: int = 0
    errors: list[str] = field(default_factory=list)   # "path:line: why", the first few
    fatal: str = ""                    # why the file failed as a whole


@dataclass(frozen=True)
class Verdict:
    blocked: bool
    block: Match | None
    allow: Match | None


class ListSet:
    def __init__(self, domains: DomainIndex, allow: DomainIndex, ips: IPIndex) -> None:
        self.domains, self.allow, self.ips = domains, allow, ips
        self.sources = [*domains.sources, *allow.sources, *ips.sources]
        self.sha256 = hashlib.sha256("".join(
            f"{s.kind} {s.path} {s.sha256}\n" for s in self.sources).encode()).hexdigest()

    def check_name(self, name: str) -> Verdict:
        """The allowlist beats the blocklists; both matches are returned for the record."""
        name = name.rstrip(".").lower()
        block, allow = self.domains.match(name), self.allow.match(name)
        return Verdict(blocked=block is not None and allow is None, block=block, allow=allow)

    @property
    def vendors(self) -> list[str]:
        return sorted({s.vendor for s in self.sources if s.kind == "block"})

    @functools.cached_property
    def label_values(self) -> tuple[frozenset[str], frozenset[str]]:
        """(vendors, categories) a record may name: bounded by what is loaded, found once."""
        return frozenset(self.vendors), frozenset(s.category for s in self.sources)


def expand(paths: list[str]) -> list[str]:
    """Files named directly, and list files (by suffix) in directories, in a stable order."""
    out: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            out += sorted(os.path.join(path, n) for n in os.listdir(path)
                          if n.endswith(LIST_SUFFIXES) and not n.startswith("."))
        else:
            out.append(path)
    return out


def load(block_paths: list[str], allow_paths: list[str], max_bad_lines: int,
         previous: ListSet | None = None) -> tuple[ListSet, list[FileReport]]:
    gc_was_enabled = gc.isenabled()
    gc.disable()          # a million new strings would trigger needless full collections
    try:
        return _load(block_paths, allow_paths, max_bad_lines, previous)
    finally:
        if gc_was_enabled:
            gc.enable()


def _load(block_paths: list[str], allow_paths: list[str], max_bad_lines: int,
          previous: ListSet | None) -> tuple[ListSet, list[FileReport]]:
    reports: list[FileReport] = []
    indexes = {"block": ([], []), "allow": ([], [])}     # kind -> (tables, sources)
    ips = IPIndex()
    previous_raw = {s.path: s.raw for s in previous.sources} if previous else {}
    previous_entries = {s.path: s.entries for s in previous.sources} if previous else {}
    for kind, paths in (("block", expand(block_paths)), ("allow", expand(allow_paths))):
        tables, sources = indexes[kind]
        for path in paths:
            report = FileReport(path, kind)
            reports.append(report)
            data = _read(path, report)
            parsed = _parse(path, kind, data, max_bad_lines, report, len(sources)) if data else None
            if parsed is not None and not report.entries and previous_entries.get(path):
                report.fatal = (f"no entries, where its previous version had "
                                f"{previous_entries[path]}: refused (an emptied list opens what it closed)")
                parsed = None
            if parsed is None and path in previous_raw:
                parsed = _parse(path, kind, previous_raw[path], max_bad_lines,
                                FileReport(path, kind), len(sources))
                report.status = "kept-previous"
            elif parsed is None:
                report.status = "failed"
                continue
            source, entries = parsed
            if source.type == "ip":
                ips.sources.append(source)
                for network in entries:
                    ips.add(network, pack(len(ips.sources) - 1))
            else:
                sources.append(source)
                tables.append(entries)
    return ListSet(DomainIndex(_merge(indexes["block"][0]), indexes["block"][1]),
                   DomainIndex(_merge(indexes["allow"][0]), indexes["allow"][1]), ips), reports


def _merge(tables: list[dict[str, int]]) -> dict[str, int]:
    """One table; for a name in several lists the first list (in load order) wins."""
    if len(tables) == 1:
        return tables[0]        # no copy: the 1M-name case stays within its memory budget
    merged: dict[str, int] = {}
    for table in reversed(tables):
        merged.update(table)
    return merged


def _read(path: str, report: FileReport) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        report.fatal = f"cannot read: {e.strerror}"
        return None


def _header(lines: list[str]) -> dict[str, str]:
    header: dict[str, str] = {}
    for line in lines:
        if strip_comment(line):
            break
        if field_ := header_field(line):
            header[field_[0]] = field_[1]
    return header


def _parse(path: str, kind: str, data: bytes, budget: int, report: FileReport,
           source_index: int) -> tuple[Source, dict[str, int] | list] | None:
    """(source, entries) where entries is {name: packed} or, for IP lists, [network]."""
    report.sha256 = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        report.fatal = f"not UTF-8 text (byte {e.start})"
        return None
    lines = text.split("\n")
    header = _header(lines[:50])
    list_type = header.get("type", "domain")
    missing = [k for k in ("vendor", "category") if not header.get(k)] if kind == "block" else []
    if missing:
        report.fatal = f"header lacks {' and '.join('# ' + k + ': ...' for k in missing)}"
        return None
    if list_type not in LIST_TYPES:
        report.fatal = f"header type {list_type!r} is not one of {', '.join(LIST_TYPES)}"
        return None
    whole, under = pack(source_index, False), pack(source_index, True)
    if list_type == "domain":
        # Fast path: every line becomes a key at C speed; the few special lines (comments,
        # other formats, anything not a plain name) are taken out again and parsed one by one.
        special = sorted(special_lines(text, lines))
        entries: dict[str, int] | list = dict.fromkeys(lines, whole)
        entries.pop("", None)
        for i in special:
            entries.pop(lines[i], None)
        numbered = ((i + 1, lines[i]) for i in special)
    else:
        entries, numbered = [], enumerate(lines, 1)
    del text
    for number, line in numbered:
        entry = strip_comment(line).lower()
        if not entry:
            continue
        try:
            if list_type == "ip":
                entries.append(parse_ip_entry(entry))
            else:
                for name, sub in parse_domain_entries(entry):
                    entries.setdefault(name, under if sub else whole)
        except LineError as e:
            report.bad_lines += 1
            if len(report.errors) < MAX_REPORTED_ERRORS:
                report.errors.append(f"{path}:{number}: {e}")
            if report.bad_lines > budget:
                report.fatal = f"more than {budget} bad lines (error budget); file rejected"
                return None
    report.entries = len(entries)
    if not entries and report.bad_lines:
        report.fatal = f"no valid entry ({report.bad_lines} bad lines): file rejected"
        return None
    source = Source(path, header.get("vendor", "allowlist"), header.get("category", "allow"),
                    kind, list_type, report.sha256, len(entries), report.bad_lines, data)
    return source, entries
