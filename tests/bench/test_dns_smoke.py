"""A seconds-long smoke run of bench/dns/run.sh (the full run stays out of the suite): the
resolver alone, logging every query, beside dnsmasq logging its queries (and unbound, where
it is installed), through the same script, so a change that breaks the bench fails here."""
import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO

SHARED = os.path.join(os.path.dirname(REPO), "shared", "bench")
TOOLS = ("dnsperf", "nsd", "dnsmasq", "taskset")


@pytest.mark.skipif(not os.path.exists(os.path.join(SHARED, "peers_dns.sh")),
                    reason="shared/bench is not beside this clone")
@pytest.mark.skipif(os.cpu_count() < 2, reason="the bench pins server and load to CPUs 0 and 1")
def test_smoke(tmp_path):
    missing = [t for t in TOOLS if not shutil.which(t)]
    assert not missing, f"missing {missing}: .ci/setup installs them"
    servers = ["dnsmasq_log_100k", "gcsguard_log_100k"] + (["unbound_log_100k"] if shutil.which("unbound") else [])
    env = dict(os.environ, ROUNDS="1", DUR="1", SIZES="100000", UNCACHED_N="2000", CASES_ONLY="blocked",
               SERVERS=" ".join(servers), PERF_WORK=str(tmp_path))
    run = subprocess.run([os.path.join(REPO, "bench", "dns", "run.sh"), "--no-doc"], env=env,
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    for server in servers:            # a row with a measured rate for every server
        row = re.search(rf"^\| {server} \| blocked \| 1 \| ([\d,]+) \|", run.stdout, re.M)
        assert row and int(row.group(1).replace(",", "")) > 0, (server, run.stdout[-3000:])
    logged = int(re.search(r"gcsguard wrote (\d+) dns.query events", run.stdout).group(1))
    assert logged > 1000, run.stdout[-2000:]
    assert "events.dropped records in that round: none" in run.stdout
