"""`gcsguard lab up | down | run`: the README's first command, end to end."""
import os
import subprocess
import sys


def gcsguard(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "appliance", "lab", *args], capture_output=True,
                          text=True, timeout=timeout)


def namespaces(prefix: str) -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in listed.splitlines() if line.startswith(prefix + "-")]


def test_up_then_down_leaves_nothing_behind(lab_dir):
    prefix, directory = f"gcu{os.getpid() % 100000}", lab_dir
    up = gcsguard("up", "--dir", directory, "--prefix", prefix, "--mode", "vendor-block")
    try:
        assert up.returncode == 0, up.stderr
        assert sorted(namespaces(prefix)) == sorted(f"{prefix}-{r}" for r in ("appl", "ctl", "inet", "mgmt"))
        again = gcsguard("up", "--dir", directory, "--prefix", prefix)
        assert again.returncode == 2 and "already here" in again.stderr
    finally:
        down = gcsguard("down", "--dir", directory)
    assert down.returncode == 0, down.stderr
    assert namespaces(prefix) == [] and not os.path.exists(f"/run/netns/{prefix}-probe") and not os.path.exists(os.path.join(directory, "lab.json"))
    assert not os.path.exists(f"/etc/netns/{prefix}-ctl")
    assert os.path.exists(os.path.join(directory, "log"))               # the evidence is kept


def test_run_replays_the_scenario_and_tears_down(lab_dir):
    prefix = f"gcr{os.getpid() % 100000}"
    run = gcsguard("run", "--dir", lab_dir, "--prefix", prefix, "--mode", "isolate", "--prometheus",
                   "--no-wait")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "every attempt went as the mode requires" in run.stdout
    assert "ok allowed site, by name (www.allowed.example)    HTTP 200" in run.stdout
    assert "dropped: vendor-learned (mydjiflight.dji.com)" in run.stdout
    assert f"Prometheus: ip netns exec {prefix}-mgmt curl" in run.stdout       # started for the user
    assert "verification PASSED" in run.stdout and "ok allowed        HTTP 200" in run.stdout
    assert "report.html: supported with reservations" in run.stdout            # the lab's clock
    assert os.path.exists(os.path.join(lab_dir, "evidence.tar.gz"))
    assert "Server is ready to receive web requests" in open(os.path.join(lab_dir, "prometheus.out")).read()
    assert namespaces(prefix) == []


def test_a_lab_directory_the_gate_cannot_reach_is_refused_at_once(tmp_path):
    """Under a directory closed to other users (root's home, pytest's 0700 tmp) the gate's
    user could not read the lab's config: said before anything is built."""
    import pytest

    from appliance.lab.lab import Lab, LabError
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    with pytest.raises(LabError, match=f"{closed} is closed to the gate.s user"):
        Lab(str(closed / "lab"), prefix="gcsnever").up()
    assert not (closed / "lab").exists()
