"""The gate takes only the config the daemon applied, and notices when the daemon writes."""
import json
import os

import pytest

from appliance.gate.follow import load_applied, watched
from tests.conftest import config_file


def applied(state_dir: str, sha256: str) -> None:
    os.makedirs(state_dir, exist_ok=True)
    with open(os.path.join(state_dir, "applied-policy.json"), "w") as f:
        json.dump({"config_sha256": sha256}, f)


def test_only_the_config_the_daemon_applied_is_taken(tmp_path):
    path = config_file(tmp_path, firewall='mode = "vendor-block"')
    first = load_applied(path)                      # the daemon never ran: nothing to follow yet
    state = first.policy.config.appliance.state_dir
    applied(state, first.policy.config.sha256)
    assert load_applied(path, first).policy.config.sha256 == first.policy.config.sha256
    config_file(tmp_path, firewall='mode = "isolate"')                  # edited, not yet applied
    with pytest.raises(ValueError, match=r"gcsguard.toml is not the policy the daemon applied"):
        load_applied(path, first)
    applied(state, "0" * 64)
    with pytest.raises(ValueError, match=r"\(000000000000\): keeping the one in force"):
        load_applied(path, first)


def test_what_the_daemon_writes_is_watched(tmp_path):
    state = str(tmp_path / "state")
    before = watched(state)
    assert set(before.values()) == {0.0}                                 # absent: nothing yet
    applied(state, "a" * 64)
    after = watched(state)
    assert after != before and after[os.path.join(state, "applied-policy.json")] > 0


def test_lists_the_gate_cannot_read_are_refused_never_judged_as_empty(tmp_path):
    """The gate's user may lack a permission the daemon has: lists it could not load, or that
    are not the daemon's, are refused (the gate keeps what it had, or refuses everything)."""
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "v.list").write_text("# vendor: DJI\n# category: vendor\nmydjiflight.dji.com\n")
    path = config_file(tmp_path, block=[str(lists)])
    first = load_applied(path)                                       # control: readable
    assert first.tls("mydjiflight.dji.com", "198.51.100.80", 443).block
    state = first.policy.config.appliance.state_dir
    os.makedirs(state, exist_ok=True)
    with open(os.path.join(state, "applied-policy.json"), "w") as f:
        json.dump({"config_sha256": first.policy.config.sha256, "lists_sha256": "f" * 64}, f)
    with pytest.raises(ValueError, match="are not the ones the daemon applied"):
        load_applied(path, first)
    os.unlink(os.path.join(state, "applied-policy.json"))           # the daemon never ran:
    (lists / "v.list").unlink()            # unreadable for the gate (root reads a mode-0 file)
    with pytest.raises(ValueError, match="not every list loaded for the gate"):
        load_applied(path, first)
