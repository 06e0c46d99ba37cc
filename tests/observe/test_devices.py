
from appliance.observe.devices import Devices, arp_table, randomized
from appliance.policy.inventory import parse_inventory
from tests.helpers import RecordingBus


def test_identity_follows_the_mac_and_new_devices_are_announced_once():
    bus = RecordingBus()
    devices = Devices(parse_inventory(["a4:c1:38:00:00:03 ctl-03 controller DJI"]), bus,
                      lookup=lambda ip: None)
    assert devices.identify("10.0.0.3") == ("", "")
    devices.learn("10.0.0.3", "A4:C1:38:00:00:03", "dhcp")
    devices.learn("10.0.0.3", "a4:c1:38:00:00:03", "neighbour")
    assert devices.identify("10.0.0.3") == ("mac:a4:c1:38:00:00:03", "ctl-03")
    devices.learn("10.0.0.9", "da:00:00:00:00:09", "neighbour")          # randomized, unknown
    devices.learn("10.0.0.9", "33:33:00:00:00:01", "packet")             # multicast: ignored
    assert devices.identify("10.0.0.9") == ("mac:da:00:00:00:00:09", "")
    assert [(e["type"], e["reason"]) for e in bus.events] == [
        ("device.seen", "inventory"), ("device.unknown", "randomized-mac")]
    assert bus.events[1]["details"]["randomized_mac"] is True
    assert randomized("da:00:00:00:00:09") and not randomized("a4:c1:38:00:00:03")


def test_a_miss_asks_the_kernel_table_at_most_once_a_second(tmp_path):
    arp = tmp_path / "arp"
    arp.write_text("IP address  HW type  Flags  HW address  Mask  Device\n"
                   "10.0.0.3  0x1  0x2  a4:c1:38:00:00:03  *  lan0\n")
    asked, now = [], [0.0]

    def lookup(ip):
        asked.append(ip)
        return arp_table(ip, str(arp))
    devices = Devices({}, RecordingBus(), clock=lambda: now[0], lookup=lookup)
    assert devices.identify("10.0.0.3") == ("mac:a4:c1:38:00:00:03", "")
    assert devices.identify("10.0.0.4") == devices.identify("10.0.0.4") == ("", "")
    assert asked == ["10.0.0.3", "10.0.0.4"]                  # the second miss was not re-read
    now[0] = 2.0
    devices.identify("10.0.0.4")
    assert asked[-1] == "10.0.0.4" and len(asked) == 3


def test_an_address_moves_to_its_new_device():
    devices = Devices({}, RecordingBus(), report_unknown=False, lookup=lambda ip: None)
    devices.learn("10.0.0.5", "a4:c1:38:00:00:05", "dhcp")
    devices.learn("10.0.0.5", "a4:c1:38:00:00:06", "dhcp")        # DHCP gave the address away
    assert devices.identify("10.0.0.5")[0] == "mac:a4:c1:38:00:00:06"


def test_a_query_looks_again_whatever_an_earlier_miss_said():
    """Stale flows of an address that left ask every few seconds and miss; a DNS query from
    it has just arrived, so the kernel knows its MAC now: it is looked up all the same."""
    table: dict = {}
    devices = Devices({}, RecordingBus(), lookup=table.get, clock=lambda: 100.0)
    assert devices.identify("10.70.255.2") == ("", "")                 # a stale flow: a miss
    table["10.70.255.2"] = "02:67:63:73:00:01"                         # the probe is back
    assert devices.identify("10.70.255.2") == ("", "")                 # debounced
    assert devices.identify("10.70.255.2", fresh=True) == ("probe", "verification-probe")


def test_a_random_mac_flood_fills_no_more_than_the_table():
    """Beyond max_devices new unknown MACs are counted (one record at the first, then every
    thousandth), not kept; an inventory device is always kept."""
    bus = RecordingBus()
    devices = Devices(parse_inventory(["a4:c1:38:00:00:03 ctl-03 controller DJI"]), bus,
                      lookup=lambda ip: None, max_devices=10)
    for i in range(2000):
        devices.learn(f"10.0.{i // 250}.{i % 250}", f"02:00:00:00:{i // 256:02x}:{i % 256:02x}", "packet")
    assert len(devices.by_mac) == 10 and devices.untracked == 1990
    devices.learn("10.9.9.9", "a4:c1:38:00:00:03", "dhcp")
    assert devices.identify("10.9.9.9") == ("mac:a4:c1:38:00:00:03", "ctl-03")   # still served
    full = [e for e in bus.events if e["type"] == "device.table_full"]
    assert [e["details"]["untracked"] for e in full] == [1, 1000]
    assert devices.identify("10.0.7.249") == ("", "")                            # not tracked


def test_the_verification_probe_is_identified_but_never_a_device():
    from appliance.observe.devices import PROBE_MAC
    bus = RecordingBus()
    devices = Devices({}, bus, lookup=lambda ip: None)
    devices.learn("10.255.255.2", PROBE_MAC, "packet")
    devices.learn("10.0.0.9", "da:00:00:00:00:09", "packet")          # control: a device
    assert devices.identify("10.255.255.2") == ("probe", "verification-probe")
    assert list(devices.by_mac) == ["da:00:00:00:00:09"]            # what gcsguard_devices counts
    assert [e["type"] for e in bus.events] == ["device.unknown"]
