"""A seconds-long smoke run of bench/observe (the full run stays out of the suite): the
NFLOG reader alone, then logged drops and new flows through a lab of its own."""
import importlib.util
import os

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("bench_observe", os.path.join(REPO, "bench", "observe", "run.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_smoke():
    reader = bench.bench_reader(2000, 1.0)
    assert reader["exact"] and reader["received"] > 1000, reader
    lab = bench.bench_lab(1000, 500, 1.0)
    assert lab["e2e"]["in_log"] == lab["e2e"]["sent"] > 500 and not lab["e2e"]["bus_dropped"], lab
    assert lab["flows"]["new_records"] == lab["flows"]["flows"] > 200 and not lab["flows"]["overruns"], lab
