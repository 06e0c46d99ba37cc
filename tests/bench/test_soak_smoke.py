"""A seconds-long smoke run of bench/soak (the 10-minute run stays out of the suite): the
mixed load on a lab of its own, sampled; nothing lost, the well-behaved client answered
in full, the misbehaving one met the bounds, the appliance under 300 MB."""
import importlib.util
import os

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("bench_soak", os.path.join(REPO, "bench", "soak", "run.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_smoke(tmp_path):
    result = bench.soak(15, 5)
    v = result["verdict"]
    assert v["all_answered"] and v["nothing_lost"] and v["under_300_mb"], v
    assert v["bounds_hit"] > 0, v
    bench.plot(result, str(tmp_path / "soak.png"))
    assert (tmp_path / "soak.png").stat().st_size > 10_000
