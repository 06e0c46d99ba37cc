"""A seconds-long smoke run of bench/lists (the full run stays out of the suite)."""
import importlib.util
import os

import pytest

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("bench_lists", os.path.join(REPO, "bench", "lists", "run.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


@pytest.mark.skipif(not os.path.exists(bench.GEN), reason="shared/bench is not beside this clone")
def test_smoke():
    (result,) = bench.run([10_000], runs=1)
    assert result["entries"] == 10_000 and result["seconds_median"] > 0 and result["peak_mb_max"] > 0
    assert "| 10,000 |" in bench.table([result])
