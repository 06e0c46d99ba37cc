"""What the report states, from synthetic records: each weakening fact, and the verdicts."""
from appliance.events.clock import parse_rfc3339
from appliance.review.facts import gather
from appliance.review.report import render

INTACT = {"ok": True, "problems": []}


def rec(minute, type, boot="b1", clock="synced", **fields):
    return {"time": f"2026-11-26T10:{minute:02d}:00Z", "type": type, "boot_id": boot,
            "clock": clock, "action": "info", **fields}


def blocked(minute, **fields):
    fields = {"type": "egress.blocked", "action": "block", "reason": "vendor-address",
              "vendor": "DJI", "device_id": "mac:00:00:5e:00:53:23", "device_name": "ctl-03", **fields}
    return rec(minute, fields.pop("type"), **fields)


PASS = rec(1, "verify.run", details={"passed": True, "failed": [], "mode": "isolate"})
SINCE, UNTIL = 1795600000.0 - 10**7, 1795600000.0 + 10**7


def test_a_clean_period_supports_the_claim():
    f = gather([rec(0, "appliance.started"), PASS, blocked(2)], "st", SINCE, UNTIL, INTACT)
    assert f.verdict == "supported" and f.weakening == []
    assert f.attempts == {("DJI", "ip", "ctl-03", "blocked"): 1}
    assert f.devices["ctl-03"]["blocked"] == 1


def test_each_weakening_fact_is_stated():
    rows = [rec(0, "appliance.started"), PASS,
            rec(2, "firewall.applied", details={"mode": "audit", "sha256": "ab"}),
            rec(3, "appliance.stopped"), rec(13, "appliance.started"),
            rec(14, "events.dropped", action="error", details={"dropped_by_sink": {"log": 3}}),
            rec(15, "log.loss", details={"records_lost": 7, "first_time": "a", "last_time": "b"}),
            rec(16, "firewall.opened", details={"why": "maintenance"}),
            rec(17, "dns.query", clock="unsynced"),
            rec(18, "verify.run", details={"passed": False, "failed": ["mqtt"]}),
            rec(19, "firewall.accounting", details={"unaccounted": 2}),
            rec(25, "appliance.started", boot="b2")]
    w = "\n".join(gather(rows, "st", SINCE, UNTIL, INTACT).weakening)
    for expected in ("Audit mode", "was down from 2026-11-26T10:03:00Z to 2026-11-26T10:13:00Z (10 min)",
                     "dropped before reaching the log", "7 records were lost",
                     "opened by an operator at 2026-11-26T10:16:00Z (maintenance)",
                     "started again at 2026-11-26T10:25:00Z without a stop record (crash or "
                     "power loss): down for an unknown time after its last record at "
                     "2026-11-26T10:19:00Z", "not synchronized",
                     "1 of 2 verification runs failed (mqtt x1)", "2 dropped packets were counted"):
        assert expected in w, expected
    assert "No verification run" in gather([blocked(1)], "st", SINCE, UNTIL, INTACT).weakening[0]


def test_verdicts_and_the_probe():
    let = blocked(2, action="log", type="egress.audit")
    assert gather([PASS, let], "st", SINCE, UNTIL, INTACT).verdict == "contradicted"
    broken = {"ok": False, "problems": ["events.jsonl:3: edited"]}
    f = gather([PASS], "st", SINCE, UNTIL, broken)
    assert f.verdict == "unsupported" and "events.jsonl:3: edited" in f.weakening[0]
    probe = blocked(2, device_id="probe", device_name="verification-probe")
    f = gather([PASS, probe], "st", SINCE, UNTIL, INTACT)
    assert not f.attempts and not f.devices                 # the probe's attempts are not a device's


def test_what_devices_sent_is_escaped_in_the_page():
    evil = rec(2, "dns.bypass", reason="dns-bypass", device_id="mac:00:00:5e:00:53:23",
               name="<script>alert(1)</script>.example", details={"dst": "192.0.2.53"})
    page = render(gather([PASS, evil], "st<b>", SINCE, UNTIL, INTACT))
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;.example" in page
    assert "st&lt;b&gt;" in page


def test_the_policy_in_force_at_the_start_is_named():
    before = rec(0, "firewall.applied", details={"mode": "audit", "sha256": "ab"})
    f = gather([before, PASS], "st", parse_rfc3339(PASS["time"]), UNTIL, INTACT)
    assert f.policy[0]["type"] == "firewall.applied (in force at the start)"
    assert "Audit mode (vendor traffic let through and logged) at the start of the period" in f.weakening


def test_a_flow_handed_to_the_gate_is_not_let_through():
    handed = blocked(2, type="egress.flow", action="redirect", reason="new",
                     details={"via": "gate", "dst": "203.0.113.10"})
    refused = blocked(2, type="tls.decision", reason="sni-list")
    f = gather([PASS, handed, refused], "st", SINCE, UNTIL, INTACT)
    assert f.verdict == "supported" and f.attempts == {("DJI", "tls", "ctl-03", "blocked"): 1}


def test_a_normal_start_is_not_a_crash():
    rows = [rec(0, "device.seen"), rec(0, "appliance.started"), PASS, blocked(2)]
    assert gather(rows, "st", SINCE, UNTIL, INTACT).weakening == []


def test_evidence_that_is_not_verified_means_no_claim_either_way():
    """Vendor traffic in a broken log is no proof it left, and none that nothing did."""
    let = blocked(2, action="log", type="egress.audit")
    for outcome in ("BROKEN", "UNVERIFIABLE"):
        integrity = {"ok": False, "outcome": outcome, "problems": ["why"]}
        f = gather([PASS, let], "st", SINCE, UNTIL, integrity)
        assert f.verdict == "unsupported", outcome
        assert f.weakening[0] == f"The log is {outcome}: why"
    assert gather([PASS, let], "st", SINCE, UNTIL, INTACT).verdict == "contradicted"   # control


def test_many_reservations_are_grouped_counted_and_capped():
    from appliance.review.report import SHOWN_PER_KIND, reservations_text
    rows = [PASS]
    for i in range(1533):                      # crash after crash: a start with no stop before it
        rows += [rec(0, "dns.query", minute_s=i), rec(0, "appliance.started")]
    rows = [dict(r, time=f"2026-11-26T{10 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z")
            for i, r in enumerate(rows)]
    f = gather(rows, "st", SINCE, UNTIL, INTACT)
    assert len(f.reservations["crash"]) == 1532
    page = render(f, "r.html.reservations.txt")
    assert "Unclean stops (crash or power loss): 1532 times" in page
    assert page.count("without a stop record") == SHOWN_PER_KIND
    assert f"and {1532 - SHOWN_PER_KIND} more, listed in r.html.reservations.txt" in page
    assert reservations_text(f).count("without a stop record") == 1532
