"""The last verification run's results as metrics, read from the results file at scrape
time: they survive daemon restarts, and a run made while the daemon was down counts."""
from __future__ import annotations

import json

from prometheus_client.core import GaugeMetricFamily


class VerifyCollector:
    def __init__(self, path: str) -> None:
        self.path = path

    def describe(self):
        return []                     # read at scrape time; nothing to check at registration

    def collect(self):
        try:
            with open(self.path) as f:
                results = json.load(f)
        except (OSError, ValueError):
            return                    # never verified: absent, which the rules alert on
        passed = GaugeMetricFamily("gcsguard_isolation_check_passed",
                                   "1 if the check passed in the last verification run, 0 if it "
                                   "failed (skipped checks are absent)", labels=["check"])
        for check in results.get("checks", []):
            if check["status"] != "skip":
                passed.add_metric([check["check"]], 1.0 if check["status"] == "pass" else 0.0)
        yield passed
        yield GaugeMetricFamily("gcsguard_isolation_last_run_timestamp_seconds",
                                "When the last verification run finished",
                                value=results.get("finished", 0))
        yield GaugeMetricFamily("gcsguard_isolation_last_run_passed",
                                "1 if every check of the last run passed with the positive control",
                                value=1.0 if results.get("passed") else 0.0)
        if results.get("last_pass"):
            yield GaugeMetricFamily("gcsguard_isolation_last_pass_timestamp_seconds",
                                    "When a verification run last passed completely",
                                    value=results["last_pass"])
