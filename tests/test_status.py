"""`gcsguard status` on the lab's appliance: protecting as configured (exit 0), and each way
it is not, named (exit 1): a config changed but not reloaded, a config that does not load,
the daemon down."""
import os
import signal
import sys

from appliance.evlog import chain


def status(lab, config=None):
    return lab.run("appl", sys.executable, "-m", "appliance", "status", "-c", config or lab.config_path,
                   timeout=30)


def test_status_says_protecting_and_each_way_it_is_not(lab, tmp_path):
    assert lab.reload(mode="vendor-block")
    assert lab.verify()[0] == 0
    ok = status(lab)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    for line in ("mode", "full ruleset", "forwarding", "daemon", "last verification", "passed",
                 "log head", "last checkpoint", "answers", "OK: protecting as configured"):
        assert line in ok.stdout, (line, ok.stdout)

    lab.settings["mode"] = "isolate"             # the config changed, the daemon not told
    lab.write_config()
    changed = status(lab)
    assert changed.returncode == 1 and "mode vendor-block, the config says isolate" in changed.stdout
    lab.settings["mode"] = "vendor-block"
    lab.write_config()

    broken = tmp_path / "broken.toml"
    broken.write_text(open(lab.config_path).read().replace("[firewall]", "[firewall]\nmdoe = 1"))
    os.chmod(tmp_path, 0o755)
    out = status(lab, str(broken))
    assert out.returncode == 1 and "the config does not load" in out.stdout, out.stdout
    assert "full ruleset" in out.stdout                      # what is in force is still said

    os.kill(lab.state.pids["appliance"], signal.SIGTERM)
    lab.appliance.wait(timeout=30)
    try:
        down = status(lab)
        assert down.returncode == 1 and "the daemon is not running" in down.stdout, down.stdout
    finally:
        lab.start_appliance()
    assert status(lab).returncode == 0
    assert chain.log_files(os.path.join(lab.directory, "log"))
