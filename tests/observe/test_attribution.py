from appliance.dns import wire
from appliance.dns.chain import Answer, Request
from appliance.firewall.learn import make_query
from appliance.observe.attribution import Attribution


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def answer(client, name, summary, verdict="forwarded"):
    return Request(q=make_query(name, wire.A), client=client, tcp=False), \
        Answer(b"", verdict, summary=tuple(summary))


def test_names_are_per_device_and_expire():
    clock = Clock()
    a = Attribution(size=10, seconds=100, clock=clock)
    a.observe(*answer("10.0.0.3", "www.allowed.example", ["CNAME edge.example", "198.51.100.80"]))
    a.observe(*answer("10.0.0.4", "other.example", ["198.51.100.81"], verdict="blocked"))   # not handed out
    assert a.name_for("10.0.0.3", "198.51.100.80") == "www.allowed.example"
    assert a.name_for("10.0.0.4", "198.51.100.80") is None        # another device never asked
    assert a.name_for("10.0.0.4", "198.51.100.81") is None
    clock.now = 101
    assert a.name_for("10.0.0.3", "198.51.100.80") is None


def test_memory_is_bounded_oldest_first():
    a = Attribution(size=2, seconds=100, clock=Clock())
    for i in range(3):
        a.observe(*answer("10.0.0.3", f"n{i}.example", [f"192.0.2.{i}"]))
    assert a.name_for("10.0.0.3", "192.0.2.0") is None
    assert a.name_for("10.0.0.3", "192.0.2.2") == "n2.example"
