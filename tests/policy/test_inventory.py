import pytest

from appliance.policy.inventory import InventoryError, parse_inventory


def test_inventory_parsing_and_errors():
    known = parse_inventory(["A4-C1-38-00-00-03 ctl-03 controller DJI Pilot", "a4:c1:38:00:00:04 tab"])
    assert known["a4:c1:38:00:00:03"].name == "ctl-03"
    assert known["a4:c1:38:00:00:03"].expected_vendor == "DJI Pilot"
    assert known["a4:c1:38:00:00:04"].role == ""
    with pytest.raises(InventoryError, match="not a MAC"):
        parse_inventory(["a4:c1:38:00:00 ctl"])
    with pytest.raises(InventoryError, match="listed twice"):
        parse_inventory(["a4:c1:38:00:00:03 a", "A4:C1:38:00:00:03 b"])
    with pytest.raises(InventoryError, match="expected 'MAC NAME"):
        parse_inventory(["a4:c1:38:00:00:03"])
