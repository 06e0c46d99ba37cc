"""gcsguard verify in the lab: a full pass; then the policy broken on purpose (a vendor
address opened, the DNS redirect removed) fails exactly the matching checks, and the
appliance's alert fires."""
import os

from appliance.lab.internet import PUBLIC_RESOLVER, VENDOR
from tests.alerts.test_service import receivers  # noqa: F401  (a fixture)
from tests.network.test_links import wait_for


def nft(lab, *args):
    result = lab.run("appl", "nft", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def statuses(results):
    return {c["check"]: c["status"] for c in results["checks"]}


def test_a_full_verification_pass(lab):
    last = lab.last_n()
    before = lab.metrics_text()
    code, results = lab.verify()
    assert code == 0 and results["passed"], results
    assert set(statuses(results).values()) == {"pass"}, statuses(results)   # nothing skipped in the lab
    assert not os.path.exists(f"/run/netns/{lab.ns.probe}")                  # the probe is gone
    records = lab.events(after=last)
    probe = [r for r in records if r.get("device_id") == "probe"]
    assert {"dns.query", "egress.blocked", "tls.decision", "http.decision", "dns.bypass"} <= \
        {r["type"] for r in probe}
    assert all(r.get("device_name") == "verification-probe" for r in probe)
    assert [r["details"]["passed"] for r in records if r["type"] == "verify.run"] == [True]
    assert len([r for r in records if r["type"] == "verify.check"]) == len(results["checks"])
    # the probe's attempts never count as a device's, and never announce a device
    assert "verification-probe" not in lab.metrics_text() and "verification-probe" not in before
    assert not [r for r in records if r["type"].startswith("device.")]
    assert lab.metric("gcsguard_isolation_check_passed", check="mqtt") == 1
    assert lab.metric("gcsguard_isolation_last_pass_timestamp_seconds") == results["finished"]


def test_breaking_the_policy_fails_the_matching_checks_and_the_alert_fires(lab, receivers):  # noqa: F811
    webhook, _ = receivers
    # 1. a vendor address opened for MQTT (the kind of edit a hurried operator makes)
    nft(lab, "insert", "rule", "inet", "gcsguard", "lan_egress", "ip", "daddr", VENDOR, "tcp", "dport",
        "1883", "accept")
    started = lab.hits()[-1]["t"] if lab.hits() else 0
    code, results = lab.verify()
    assert code == 1 and results["failed"] == ["mqtt"], \
        [(c["check"], c["why"]) for c in results["checks"] if c["status"] != "pass"]
    mqtt = next(c for c in results["checks"] if c["check"] == "mqtt")
    assert mqtt["why"] == "the attempt got through"
    assert [h for h in lab.hits(after=started) if h["addr"] == VENDOR and h["service"] == "mqtt"]
    assert statuses(results)["allowed"] == "pass"                            # the network works
    assert lab.metric("gcsguard_isolation_check_passed", check="mqtt") == 0
    assert wait_for(lambda: [w for w in webhook() if w["status"] == "firing"
                             and w["alert"] == "isolation-check-failed"], timeout=20)
    fired = [w for w in webhook() if w["alert"] == "isolation-check-failed"][0]
    assert fired["group"] == {"reason": "mqtt"}
    assert lab.reload()                                                      # the whole table again

    # 2. the resolver redirect removed: foreign DNS is dropped, no longer answered by us
    listing = nft(lab, "-a", "list", "chain", "inet", "gcsguard", "dns_redirect")
    handles = [line.rsplit("# handle ", 1)[1] for line in listing.splitlines()
               if "dport 53" in line and "redirect to" in line]
    assert handles
    for handle in handles:
        nft(lab, "delete", "rule", "inet", "gcsguard", "dns_redirect", "handle", handle)
    code, results = lab.verify()
    assert code == 1 and results["failed"] == ["foreign-dns"], statuses(results)
    assert PUBLIC_RESOLVER in next(c["label"] for c in results["checks"] if c["check"] == "foreign-dns")
    assert lab.reload()

    code, results = lab.verify()                                             # repaired: passes again
    assert code == 0 and lab.metric("gcsguard_isolation_check_passed", check="foreign-dns") == 1
