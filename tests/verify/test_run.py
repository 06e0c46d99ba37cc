"""A run that cannot be made is recorded as such and changes no results (no netns made)."""
import json

import pytest

from appliance.config.schema import (ApplianceSection, Config, EventsSection, LogSection,
                                     NetworkSection)
from appliance.evlog import chain, signing
from appliance.verify.probe import ProbeError
from appliance.verify.run import results_path, verify


def test_a_run_without_a_probe_is_recorded_as_a_failed_run(tmp_path):
    key = str(tmp_path / "log.key")
    signing.generate_key(key, str(tmp_path / "log.pub"))
    config = Config(appliance=ApplianceSection(state_dir=str(tmp_path / "state")),
                    log=LogSection(directory=str(tmp_path / "log"), signing_key_file=key),
                    events=EventsSection(socket=str(tmp_path / "none.sock")),
                    network=NetworkSection(lan_interfaces=("gcsnolan0",)))   # no such interface
    with pytest.raises(ProbeError, match="no LAN IPv4 address"):
        verify(config)
    log = tmp_path / "log" / chain.log_files(str(tmp_path / "log"))[0]
    run, = [json.loads(line) for line in log.read_text().splitlines()]
    assert (run["type"], run["action"], run["reason"]) == ("verify.run", "error", "no-run")
    assert not (tmp_path / "state" / "verify.json").exists() and results_path(config).endswith("verify.json")
