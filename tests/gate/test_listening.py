"""The gate's presence read from /proc/net/tcp: its port, listening, owned by its uid."""
from appliance.gate.listening import GateListening, listening

TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0C3A 00000000:0000 0A 00000000:00000000 00:00000000 00000000 64500        0 635 1 0 100 0 0 10 0
   1: 0100007F:0C3A 0100007F:9C40 01 00000000:00000000 00:00000000 00000000 64500        0 636 1 0 100 0 0 10 0
   2: 00000000:2345 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 637 1 0 100 0 0 10 0
"""


def test_only_a_listening_socket_on_the_port_as_the_gates_user_counts():
    assert listening(TABLE, 3130, 64500)                   # 0x0C3A, state 0A, uid 64500
    assert not listening(TABLE, 3130, 0)                   # someone else's
    assert not listening(TABLE, 9029, 64500)               # 0x2345 is root's
    established_only = "\n".join(line for line in TABLE.splitlines() if " 0A " not in line)
    assert not listening(established_only, 3130, 64500)   # a connection, not a listener


def test_the_gauge_reads_every_table_and_survives_a_missing_one(tmp_path):
    (tmp_path / "tcp6").write_text(TABLE)
    gauge = lambda port: next(GateListening(port, 64500, (str(tmp_path / "tcp"), str(tmp_path / "tcp6")))  # noqa: E731
                              .collect()).samples[0].value
    assert gauge(3130) == 1 and gauge(3131) == 0
