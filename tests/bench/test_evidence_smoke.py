"""A seconds-long smoke run of bench/evidence (the 1 GiB run stays out of the suite)."""
import importlib.util
import os

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("bench_evidence",
                                              os.path.join(REPO, "bench", "evidence", "run.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_smoke():
    results = bench.run(4)
    assert [(r["command"], r["exit"]) for r in results] == [("export", 0), ("verify", 0)]
    assert all(r["rss_mib"] > 10 and r["log_mib"] > 3 for r in results)
    assert "| this tree | verify |" in bench.table(results)
