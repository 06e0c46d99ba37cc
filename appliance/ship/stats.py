"""The station's rsyslog, seen from /metrics: what it shipped, and whether it still runs.

rsyslog's impstats appends one JSON line per counter set every interval to a file
("Mon Nov 30 09:07:21 2026: {...}"); the latest line for the shipping action is read from
the file's tail at scrape time. The file's age says whether rsyslog still runs; the sent
counter standing still while checkpoints are signed says the collector is not taking lines
(the rule GcsguardShippingStalled). logrotate keeps the file small (copytruncate).
"""
from __future__ import annotations

import json
import os

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .rsyslog import ACTION

TAIL = 16384


def latest(path: str) -> tuple[dict, float] | None:
    """(the shipping action's counters, the file's mtime) from its last lines, or None."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - TAIL))
            lines = f.read().split(b"\n")
            mtime = os.fstat(f.fileno()).st_mtime
    except OSError:
        return None
    for line in reversed(lines):
        start = line.find(b"{")
        if start < 0:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:            # the first line of the tail, cut in two
            continue
        if isinstance(record, dict) and record.get("name") == ACTION:
            return record, mtime
    return None


class ShipCollector(Collector):
    def __init__(self, stats_path: str) -> None:
        self.path = stats_path

    def collect(self):
        got = latest(self.path)
        action, mtime = got if got else ({}, 0.0)
        age = GaugeMetricFamily("gcsguard_ship_stats_timestamp_seconds",
                                "When the station's rsyslog last wrote its shipping statistics "
                                "(0: never; old: rsyslog is not running)")
        age.add_metric([], mtime)
        yield age
        for name, text, value in (
                ("gcsguard_ship_sent", "Log lines handed to the collector's RELP session",
                 action.get("processed", 0)),
                ("gcsguard_ship_failed", "Log lines the shipping action failed on",
                 action.get("failed", 0)),
                ("gcsguard_ship_resumptions", "Times shipping resumed after the collector was unreachable",
                 action.get("resumed", 0))):
            family = CounterMetricFamily(name, text)
            family.add_metric([], float(value))
            yield family
