import re

from appliance.events.clock import Clock, kernel_boot_id, kernel_clock_state, parse_rfc3339, rfc3339


def test_rfc3339_utc_microseconds():
    text = rfc3339(1795000000.25)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text)
    assert text.endswith(".250000Z") and parse_rfc3339(text) == 1795000000.25


def test_stamp_carries_sync_state_and_rereads_it_each_second(fake_time):
    states = iter(["unsynced", "synced"])
    clock = Clock(wall=fake_time.wall, mono_ns=fake_time.mono_ns, boot_id="b",
                  clock_state=lambda: next(states))
    assert clock.stamp().clock == "unsynced"
    fake_time.advance(0.5)
    assert clock.stamp().clock == "unsynced"      # cached within the second
    fake_time.advance(1)
    s = clock.stamp()
    assert s.clock == "synced" and s.boot_id == "b" and s.mono_ns == fake_time.mono


def test_kernel_sources_answer():
    assert kernel_clock_state() in ("synced", "unsynced", "unknown")
    assert re.fullmatch(r"[0-9a-f-]{36}", kernel_boot_id())
