"""What one LAN host may hold through the gate: the pure bookkeeping (the lab test in
test_gate.py floods a real gate)."""
from appliance.gate.bounds import ClientBounds


def test_a_host_is_capped_and_its_refusals_summarized_once():
    b = ClientBounds(per_client=2, handshake=5.0)
    assert b.admit("a1", "10.0.0.5", "c", 0.0) and b.admit("a2", "10.0.0.5", "c", 0.0)
    assert not b.admit("a3", "10.0.0.5", "c", 0.0)            # over the cap
    assert b.admit("b1", "10.0.0.6", "c", 0.0)                # another host is not affected
    assert b.summary() == {"refused": 1, "clients": 1, "top": {"10.0.0.5": 1}, "cap": 2}
    assert b.summary() is None                                 # summarized once
    b.release("a1", "10.0.0.5")
    assert b.admit("a4", "10.0.0.5", "c", 0.0)                # room again
    b.release("a3", "10.0.0.5")                               # a refused one frees nothing
    assert not b.admit("a5", "10.0.0.5", "c", 0.0)


def test_connections_that_show_nothing_are_overdue_and_decided_ones_are_not():
    b = ClientBounds(per_client=10, handshake=5.0)
    b.admit("quiet", "10.0.0.5", "q", 0.0)
    b.admit("talker", "10.0.0.5", "t", 0.0)
    b.decided("talker")
    b.watch("mid-hello", "m", 3.0)                             # first seen later
    assert b.overdue(4.9) == []
    assert b.overdue(5.0) == [("quiet", "q")]
    assert b.overdue(8.0) == [("mid-hello", "m")] and b.overdue(100.0) == []
