"""Rendering review results as a readable table, JSON lines or CSV."""
from __future__ import annotations

import csv
import json
from typing import IO, Any, Iterable

from .query import device_label

EVENT_COLUMNS = ("time", "device", "type", "action", "name", "vendor", "reason")


def event_row(r: dict[str, Any]) -> dict[str, Any]:
    return {"time": r.get("time", ""), "device": device_label(r),
            "type": r.get("type", ""), "action": r.get("action", ""), "name": r.get("name", ""),
            "vendor": r.get("vendor", ""), "reason": r.get("reason", "")}


FOLLOW_WIDTHS = {"time": 27, "device": 22, "type": 18, "action": 8, "name": 40, "vendor": 12}


def write_live(rows: Iterable[dict[str, Any]], fmt: str, out: IO[str]) -> None:
    """One line per record as it comes (fixed widths: the rows to come are unknown)."""
    if fmt == "csv":
        w = csv.DictWriter(out, fieldnames=EVENT_COLUMNS, lineterminator="\n")
        w.writeheader()
    elif fmt == "table":
        out.write("  ".join(c.upper().ljust(FOLLOW_WIDTHS.get(c, 0)) for c in EVENT_COLUMNS).rstrip() + "\n")
    out.flush()
    for r in rows:
        if fmt == "json":
            out.write(json.dumps(r, ensure_ascii=False) + "\n")
        elif fmt == "csv":
            w.writerow(event_row(r))
        else:
            row = event_row(r)
            out.write("  ".join(str(row[c]).ljust(FOLLOW_WIDTHS.get(c, 0)) for c in EVENT_COLUMNS).rstrip() + "\n")
        out.flush()


def write(rows: Iterable[dict[str, Any]], fmt: str, out: IO[str],
          columns: tuple[str, ...] | None = None) -> int:
    rows = list(rows)
    if fmt == "json":
        for r in rows:
            out.write(json.dumps(r, ensure_ascii=False) + "\n")
        return len(rows)
    columns = columns or tuple(dict.fromkeys(k for r in rows for k in r))
    if fmt == "csv":
        w = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return len(rows)
    widths = {c: max([len(c), *(len(str(r.get(c, ""))) for r in rows)]) for c in columns}
    out.write("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip() + "\n")
    for r in rows:
        out.write("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns).rstrip() + "\n")
    return len(rows)
