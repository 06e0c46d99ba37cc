"""`gcsguard review report`: the isolation report for a period, as one self-contained HTML
page (charts inlined as SVG), and a PDF printed by headless Chromium where it is installed.

Everything from the log is escaped: query names and SNI come from the devices.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import tempfile
from html import escape

from .. import __version__
from ..events.clock import parse_rfc3339
from ..evlog.verify import VERIFIED, verify
from . import charts
from .bundle import verify_bundle
from .facts import Facts, gather
from .query import records

VERDICTS = {     # verdict -> (what the report says, its colour, the exit code of `review report`)
    "supported": ("The claim holds", "#2e7d32", 0),
    "supported with reservations": ("The claim holds, with the reservations listed below",
                                    "#ef6c00", 0),
    "contradicted": ("The claim does NOT hold: vendor traffic was let through", "#c62828", 1),
    "unsupported": ("The claim cannot be made: the evidence is broken, unverifiable or missing",
                    "#6a1b9a", 3),
}
RESERVATION_KINDS = {
    "evidence": "The evidence", "down": "The appliance was down",
    "crash": "Unclean stops (crash or power loss)", "audit": "Audit mode",
    "opened": "The firewall opened by an operator", "dropped": "Events dropped before the log",
    "lost": "Records lost (log writes failed)", "unaccounted": "Dropped packets not logged",
    "clock": "Clock not synchronized", "runs": "Verification runs",
}
SHOWN_PER_KIND = 5
# Printed on A4 with page numbers; table headers repeat on each page; a heading is never
# left alone at the foot of a page.
CSS = """body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:2em}
h1,h2{break-after:avoid}
.claim{border-left:6px solid;padding:.6em 1em;background:#f6f6f6}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
thead{display:table-header-group}tr{break-inside:avoid}
th{background:#dde4ee;text-align:left}th,td{border:1px solid #bbb;padding:.2em .5em}
li{margin:.3em 0}.muted{color:#666}
@page{size:A4;margin:16mm 14mm 18mm;
@bottom-center{content:"page " counter(page) " of " counter(pages);font:9pt sans-serif;color:#666}}
@media print{body{max-width:none;margin:0}}"""


def _utc(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return (f"<table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body or '<tr><td colspan=99>none</td></tr>'}</tbody></table>")


def gather_source(source: str, keyring=None, since: float | None = None,
                  until: float | None = None, station: str = "", progress=None,
                  copy: bool = False) -> Facts:
    """The facts of a bundle (verified first; its period and station by default) or of a log
    directory (from its first record to its last; the station from its checkpoints). A
    missing source gives facts too: a claim that cannot be made, and why. `copy`: the
    directory is a collector's copy (lines a shipper sent twice are read once)."""
    with tempfile.TemporaryDirectory() as unpacked:
        directory, bundle_report, period = source, None, (None, None)
        if os.path.isfile(source):
            bundle_report = verify_bundle(source, keyring, keep=unpacked)
            directory, m = os.path.join(unpacked, "log"), bundle_report.manifest
            station, period = station or m.get("station", ""), (m.get("from"), m.get("to"))
            log = bundle_report.log or verify(directory, keyring)
        else:
            log = verify(directory, keyring, progress=progress, copy=copy)
        station = station or _checkpoint_station(directory)
        first, last = (parse_rfc3339(t) if t else None for t in (log.first_time, log.last_time))
        now = datetime.datetime.now().timestamp()
        since = since if since is not None else period[0] or first or now
        until = until if until is not None else period[1] or (last + 1e-6 if last else now)
        return gather(records(directory, progress, copy), station, since, until,
                      _integrity(log, bundle_report))


def _integrity(log, bundle_report=None) -> dict:
    outcome = bundle_report.outcome if bundle_report else log.outcome
    problems = ([str(p) for p in log.problems] + log.unverifiable if bundle_report is None
                else bundle_report.problems + bundle_report.unverifiable)
    return {"ok": outcome == VERIFIED, "outcome": outcome, "problems": problems,
            "records": log.records, "first_n": log.first_n, "last_n": log.last_n,
            "checkpoints": log.checkpoints_ok, "gaps": log.gaps, "losses": log.losses,
            "notes": log.notes + (bundle_report.notes if bundle_report else [])}


def _checkpoint_station(directory: str) -> str:
    try:
        with open(os.path.join(directory, "checkpoints.jsonl")) as f:
            return json.loads(f.readline())["station"]
    except (OSError, ValueError, KeyError):
        return "unknown"


def render(f: Facts, full_list: str = "") -> str:
    """`full_list`: the file that holds every reservation, named where a kind is capped."""
    title, color, _ = VERDICTS[f.verdict]
    devices = sorted(f.devices)
    passed = [r for r in f.runs if r.get("passed")]
    parts = [
        f"<h1>Isolation report: station {escape(f.station)}</h1>",
        f"<p class=muted>{_utc(f.since)} to {_utc(f.until)}; {f.records} log records; "
        f"made by gcsguard {__version__} on {_utc(datetime.datetime.now().timestamp())}</p>",
        f"<div class=claim style='border-color:{color}'><p><b>Claim:</b> no data left to vendor "
        f"endpoints from these devices ({escape(', '.join(devices) or 'none seen')}) between "
        f"{_utc(f.since)} and {_utc(f.until)}.</p><p style='color:{color}'><b>{escape(title)}.</b></p></div>",
        "<h2>What backs it</h2>",
        f"<p><b>Verification:</b> {len(f.runs)} runs, {len(passed)} passed"
        + (f"; last pass {escape(passed[-1]['time'])}" if passed else "") + ".</p>",
        _table(["time", "passed", "failed checks", "mode"],
               [[r["time"], "yes" if r.get("passed") else "NO", ", ".join(r.get("failed", [])),
                 r.get("mode", "")] for r in f.runs[-20:]]),
        f"<p><b>Log continuity:</b> {escape(f.integrity.get('outcome', 'UNVERIFIABLE'))}: "
        f"records {f.integrity.get('first_n')}..{f.integrity.get('last_n')}, "
        f"{f.integrity.get('checkpoints')} signed checkpoints match.</p>",
        _capped([*f.integrity.get("problems", []), *f.integrity.get("gaps", []),
                 *f.integrity.get("losses", [])], full_list),
        "<p><b>Policy in force</b> (hashes from the load records):</p>",
        _table(["time", "record", "sha256", "mode"],
               [[p["time"], p["type"], p["sha256"], p["mode"]] for p in f.policy]),
        "<h2>What weakens it</h2>",
        _reservations(f, full_list),
    ]
    if f.let_through:
        parts += ["<h2>Vendor traffic let through</h2>", _table(
            ["time", "device", "type", "vendor", "name", "destination"],
            [[r["time"], r.get("device_name") or r.get("device_id", ""), r["type"], r.get("vendor", ""),
              r.get("name", ""), (r.get("details") or {}).get("dst", "")] for r in f.let_through[:200]])]
    parts += ["<h2>Attempts</h2>"]
    if f.attempts:
        parts += [charts.by_vendor(f.attempts), charts.over_time(f.hourly), charts.by_device(f.devices)]
    by_vendor: dict = {}
    for (vendor, layer, device, outcome), n in f.attempts.items():
        row = by_vendor.setdefault(vendor, {"blocked": 0, "let through": 0, "layers": set(), "devices": set()})
        row[outcome] += n
        row["layers"].add(layer)
        row["devices"].add(device)
    parts += [_table(["vendor", "blocked", "let through", "layers", "devices"],
                     [[v, r["blocked"], r["let through"], ", ".join(sorted(r["layers"])),
                       ", ".join(sorted(r["devices"]))] for v, r in sorted(by_vendor.items())]),
              "<h2>Devices</h2>",
              _table(["device", "first seen", "last seen", "blocked", "let through"],
                     [[d, v["first"], v["last"], v["blocked"], v["let_through"]]
                      for d, v in sorted(f.devices.items())]),
              "<h2>Notable events</h2>",
              f"<p class=muted>Bypass attempts, direct-IP connections and unknown devices: "
              f"{f.notable_total} in all{', the first 200 shown' if f.notable_total > 200 else ''}.</p>",
              _table(["time", "device", "type", "reason", "name", "destination"],
                     [[r["time"], r.get("device_name") or r.get("device_id") or r.get("device_ip", ""),
                       r["type"], r.get("reason", ""), r.get("name", ""),
                       (r.get("details") or {}).get("dst", "")] for r in f.notable])]
    return (f"<!DOCTYPE html><html><head><meta charset=utf-8><title>Isolation report "
            f"{escape(f.station)}</title><style>{CSS}</style></head><body>{''.join(parts)}</body></html>")


def _capped(items: list[str], full_list: str) -> str:
    more = len(items) - SHOWN_PER_KIND
    shown = "".join(f"<li>{escape(i)}</li>" for i in items[:SHOWN_PER_KIND])
    if more > 0:
        shown += f"<li class=muted>and {more} more" + (f", listed in {escape(full_list)}"
                                                       if full_list else "") + "</li>"
    return f"<ul>{shown}</ul>" if items else ""


def _reservations(f: Facts, full_list: str) -> str:
    """One line per kind, with its count; the first few of each, then where the rest are."""
    if not f.reservations:
        return "<ul><li>nothing</li></ul>"
    items = []
    for kind, texts in f.reservations.items():
        if len(texts) == 1:
            items.append(f"<li>{escape(texts[0])}</li>")
        else:
            items.append(f"<li><b>{escape(RESERVATION_KINDS.get(kind, kind))}: {len(texts)} times"
                         f"</b>{_capped(texts, full_list)}</li>")
    return f"<ul>{''.join(items)}</ul>"


def reservations_text(f: Facts) -> str:
    """Every reservation, grouped, for the file the report points to."""
    return "".join(f"{RESERVATION_KINDS.get(kind, kind)} ({len(texts)}):\n"
                   + "".join(f"  {t}\n" for t in texts) for kind, texts in f.reservations.items())


def chromium() -> str | None:
    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)


def headless(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Chromium without a display, a profile of its own, and no calls home."""
    browser = chromium()
    if browser is None:
        raise FileNotFoundError("no Chromium installed (apt install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                               "--disable-quic", "--no-first-run", "--disable-background-networking",
                               "--disable-component-update", "--disable-sync",
                               f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)


def to_pdf(html_path: str, pdf_path: str) -> None:
    result = headless("--no-pdf-header-footer", f"--print-to-pdf={os.path.abspath(pdf_path)}",
                      f"file://{os.path.abspath(html_path)}")
    if not os.path.exists(pdf_path):
        raise RuntimeError(f"Chromium made no PDF: {result.stderr.strip()[-300:]}")
