"""A seconds-long smoke run of bench/gate (the full run, with HAProxy beside it, stays out
of the suite): direct, through the gate and blocked, in a lab of its own, with the bare
relay as the one peer (HAProxy is not installed by .ci/setup)."""
import importlib.util
import os

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("bench_gate", os.path.join(REPO, "bench", "gate", "run.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_smoke():
    result = bench.bench(connections=40, concurrency=4, rounds=1, peers=("relay",))
    rounds, summary = result["rounds"], result["summary"]
    assert rounds["gate"][0]["completed"] == rounds["direct"][0]["completed"] == 40, rounds
    assert rounds["blocked"][0]["completed"] == 40, rounds            # refusals, completed
    assert rounds["relay"][0]["completed"] == 40, rounds
    assert summary["gate"]["cpu_ms_per_connection"] > 0 and summary["gate"]["daemon_cpu_ms_per_connection"] > 0
