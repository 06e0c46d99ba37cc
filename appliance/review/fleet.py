"""The isolation report across stations: one report per station (as `review report`
writes for one) and an index, one row per station with its claim, so an auditor sees at
a glance which stations hold, which do not, and which cannot be judged."""
from __future__ import annotations

import os
import re
from html import escape

from .report import VERDICTS, _table, _utc, render


def _slug(station: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", station) or "station"
    name, i = base, 2
    while name in taken:
        name, i = f"{base}-{i}", i + 1
    taken.add(name)
    return name


def write(reports: list[tuple[str, object]], out_dir: str) -> tuple[list[list], int]:
    """`reports`: (source, facts) per station. Writes <station>.html and index.html in
    out_dir; returns the index rows and the exit code (the worst claim: cannot be made 3,
    does not hold 1, holds 0)."""
    os.makedirs(out_dir, exist_ok=True)
    rows, taken, code = [], set(), 0
    for source, facts in reports:
        page = f"{_slug(facts.station, taken)}.html"
        with open(os.path.join(out_dir, page), "w") as f:
            f.write(render(facts))
        title, _, verdict_code = VERDICTS[facts.verdict]
        code = max(code, verdict_code)
        rows.append([facts.station, title, facts.integrity.get("outcome", ""),
                     f"{_utc(facts.since)} to {_utc(facts.until)}", len(facts.weakening),
                     len(facts.runs), sum(facts.attempts.values()), page, source])
    headers = ["station", "claim", "log", "period", "reservations", "verification runs",
               "attempts", "report", "source"]
    links = "".join(f"<li><a href='{escape(r[7])}'>{escape(r[0])}</a>: {escape(r[1])}</li>" for r in rows)
    with open(os.path.join(out_dir, "index.html"), "w") as f:
        f.write("<!doctype html><meta charset=utf-8><title>gcsguard: isolation across stations</title>"
                "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 8px;border:1px solid #ccc}"
                "th{background:#dde4ee}</style><h1>Isolation across stations</h1>"
                f"{_table(headers, rows)}<ul>{links}</ul>")
    return rows, code

