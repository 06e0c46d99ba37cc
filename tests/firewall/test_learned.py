import json

import pytest

from appliance.firewall.learned import LearnedAddresses
from appliance.policy.allow import AllowNames, parse_allow


def test_provenance_and_new_addresses():
    store = LearnedAddresses()
    assert store.observe("vendor", "mydjiflight.dji.com", ["203.0.113.10", "2001:db8::10"], 100.0) == \
        ["203.0.113.10", "2001:db8::10"]
    assert store.observe("vendor", "api.dji.com", ["203.0.113.10"], 150.0) == []   # known: not new
    about = store.about("203.0.113.10")["vendor"]["names"]
    assert about["mydjiflight.dji.com"] == {"first_seen": 100.0, "last_seen": 100.0}
    assert about["api.dji.com"]["first_seen"] == 150.0
    assert store.blocked("203.0.113.10") == "vendor" and store.blocked("192.0.2.1") is None


def test_prune_only_what_no_name_produced_recently():
    store = LearnedAddresses()
    store.observe("vendor", "old.dji.com", ["203.0.113.1"], 0.0)
    store.observe("vendor", "fresh.dji.com", ["203.0.113.2"], 0.0)
    store.observe("vendor", "fresh.dji.com", ["203.0.113.2"], 900.0)
    assert store.prune(1000.0, keep=500.0) == [("vendor", "203.0.113.1")]
    assert "203.0.113.2" in store.kinds["vendor"]


@pytest.mark.parametrize("policy, vendor_elements", [("block", ["198.51.100.9"]), ("allow", [])])
def test_shared_address_follows_policy(policy, vendor_elements):
    store = LearnedAddresses(policy)
    store.observe("vendor", "cdn.dji.com", ["198.51.100.9"], 1.0)
    store.observe("allow", "tiles.example", ["198.51.100.9"], 1.0)
    assert store.conflict("198.51.100.9")
    elements = store.elements(AllowNames([parse_allow("tiles.example tcp/443")]))
    assert elements["learned_vendor"] == vendor_elements
    assert elements["learned_allow_svc"] == [("198.51.100.9", ("tcp", "443"))]
    assert elements["learned_allow"] == []                   # only the listed ports


def test_allowed_ports_follow_the_current_allowlist():
    store = LearnedAddresses()
    store.observe("allow", "www.allowed.example", ["198.51.100.80"], 1.0)
    wide = AllowNames([parse_allow("allowed.example")])
    narrow = AllowNames([parse_allow("www.allowed.example tcp/443")])
    assert store.elements(wide)["learned_allow"] == ["198.51.100.80"]
    assert store.elements(narrow)["learned_allow"] == []
    assert store.elements(narrow)["learned_allow_svc"] == [("198.51.100.80", ("tcp", "443"))]
    gone = store.elements(AllowNames([]))                    # no longer allowlisted: not allowed
    assert gone["learned_allow"] == gone["learned_allow_svc"] == []


def test_save_and_load_round_trip(tmp_path):
    path = str(tmp_path / "learned.json")
    store = LearnedAddresses()
    store.observe("bypass", "dns.google", ["198.51.100.53"], 5.0)
    store.observe("allow", "www.allowed.example", ["198.51.100.80"], 6.0)
    store.save(path)
    again = LearnedAddresses()
    again.load(path)
    allows = AllowNames([parse_allow("www.allowed.example")])
    assert again.elements(allows) == store.elements(allows)
    assert again.elements(allows)["learned_allow"] == ["198.51.100.80"]
    assert again.about("198.51.100.53") == store.about("198.51.100.53")


def test_missing_file_is_empty_and_damaged_file_is_named(tmp_path):
    store = LearnedAddresses()
    store.load(str(tmp_path / "absent.json"))
    assert store.elements()["learned_vendor"] == []
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 1, "addresses": {"vendor": {"1.2.3.4": {}}}}))
    with pytest.raises(ValueError, match="bad.json: cannot read learned addresses"):
        store.load(str(bad))
