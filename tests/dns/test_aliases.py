from appliance.dns.aliases import MIN_SECONDS, Aliases


def test_aliases_live_as_long_as_their_answer_and_are_bounded():
    now = [0.0]
    aliases = Aliases(capacity=2, clock=lambda: now[0])
    aliases.add(["edge.cdn.example"], ttl=3600)
    assert "edge.cdn.example" in aliases and "other.example" not in aliases
    now[0] = 3601
    assert "edge.cdn.example" not in aliases
    aliases.add(["a.example"], ttl=0)                       # at least MIN_SECONDS
    now[0] += MIN_SECONDS - 1
    assert "a.example" in aliases
    aliases.add(["b.example", "c.example"], ttl=60)
    assert len(aliases) == 2 and "a.example" not in aliases  # the oldest forgotten
