"""The socket's schema check, pure: what a record may hold (the socket is tested live in
test_socket.py)."""
import json

import pytest

from appliance.events.senders import COMMANDS, GATE, Rejected, Vocabulary, check

VOCABULARY = Vocabulary(lambda: {"DJI"}, lambda: {"vendor"})


def doc(**fields):
    return json.dumps({"type": "tls.decision", "action": "block", "reason": "sni-list",
                       "name": "mydjiflight.dji.com", **fields}).encode()


def test_a_valid_gate_record():
    fields, source = check(doc(vendor="DJI", details={"sni": "x", "alpn": ["h2"]}), GATE, VOCABULARY)
    assert source == "gate" and fields["vendor"] == "DJI" and fields["details"]["alpn"] == ["h2"]


@pytest.mark.parametrize("data, allowed, reason", [
    (doc(), COMMANDS, "type"),                                          # not this sender's type
    (b"[]", GATE, "schema"),
    (b"{", GATE, "json"),
    (doc(action="open"), GATE, "schema"),
    (doc(name="x" * 256), GATE, "schema"),
    (doc(name="a\x00b"), GATE, "text"),
    (doc(reason="Sni List"), GATE, "vocabulary"),
    (doc(details={"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}), GATE, "depth"),
    (doc(details={"x": "y" * 3000}), GATE, "size"),
    (doc(details={"x": list(range(600))}), GATE, "size"),
    (doc(details=[1]), GATE, "schema"),
])
def test_refusals_name_their_reason(data, allowed, reason):
    with pytest.raises(Rejected) as e:
        check(data, allowed, VOCABULARY)
    assert e.value.reason == reason


def test_lone_surrogates_and_nesting_bombs():
    with pytest.raises(Rejected, match="Unicode") as e:
        check(b'{"type":"tls.decision","action":"block","name":"\\ud800"}', GATE, VOCABULARY)
    assert e.value.reason == "text"
    bomb = b'{"type":"tls.decision","action":"block","details":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(Rejected) as e:
        check(bomb, GATE, VOCABULARY)
    assert e.value.reason == "depth"


def test_an_unknown_vendor_is_kept_as_a_claim_not_a_label():
    fields, _ = check(doc(vendor="Evil Corp", category="x"), GATE, VOCABULARY)
    assert "vendor" not in fields and "category" not in fields
    assert fields["details"] == {"claimed_vendor": "Evil Corp", "claimed_category": "x"}
