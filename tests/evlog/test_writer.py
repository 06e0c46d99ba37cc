import json
import os

from appliance.evlog import chain, signing
from appliance.evlog.verify import verify

from .helpers import make_writer, write_events


def records(directory):
    out = []
    for name in chain.log_files(str(directory)):
        with open(directory / name, "rb") as f:
            out += [json.loads(line) for line in f]
    return out


def test_records_are_chained_and_numbered(tmp_path, keypair, clock, fake_time):
    key, _ = keypair
    w = make_writer(tmp_path, key, clock)
    write_events(w, clock, fake_time, 12)
    w.close()
    rs = records(tmp_path)
    assert [r["n"] for r in rs] == list(range(1, 13))
    assert rs[0]["prev"] == chain.GENESIS
    lines = (tmp_path / chain.log_files(str(tmp_path))[0]).read_bytes().splitlines()
    assert rs[5]["prev"] == chain.line_hash(lines[4])
    assert rs[0]["name"] == "n0.dji.com" and rs[0]["schema_version"] == 1


def test_restart_continues_the_chain(tmp_path, keypair, clock, fake_time):
    key, pub = keypair
    w = make_writer(tmp_path, key, clock)
    write_events(w, clock, fake_time, 4)
    w.close()
    w = make_writer(tmp_path, key, clock)
    assert w.n == 4
    write_events(w, clock, fake_time, 3)
    w.close()
    assert [r["n"] for r in records(tmp_path)] == list(range(1, 8))
    report = verify(str(tmp_path), signing.load_public(pub))
    assert report.ok, report.problems
    assert report.records == 7 and report.checkpoints_ok >= 2


def test_rotation_by_size_and_day_keeps_one_chain(tmp_path, keypair, clock, fake_time):
    key, pub = keypair
    w = make_writer(tmp_path, key, clock, max_file_bytes=2000)
    write_events(w, clock, fake_time, 20, per_batch=2)
    fake_time.advance(86400)                 # next UTC day
    write_events(w, clock, fake_time, 2)
    w.close()
    files = chain.log_files(str(tmp_path))
    assert len(files) > 3
    assert files[-1].startswith("events-" + clock.stamp().time[:10])
    assert verify(str(tmp_path), signing.load_public(pub)).ok


def test_clock_set_back_never_reorders_files(tmp_path, keypair, clock, fake_time):
    key, pub = keypair
    w = make_writer(tmp_path, key, clock)
    write_events(w, clock, fake_time, 2)
    fake_time.advance(-40 * 86400)           # NTP corrects a clock that ran ahead
    write_events(w, clock, fake_time, 2)
    w.close()
    assert len(chain.log_files(str(tmp_path))) == 1
    assert verify(str(tmp_path), signing.load_public(pub)).ok


def test_torn_tail_is_recorded_and_chain_continues(tmp_path, keypair, clock, fake_time):
    key, pub = keypair
    w = make_writer(tmp_path, key, clock)
    write_events(w, clock, fake_time, 3)
    w.close()
    name = chain.log_files(str(tmp_path))[0]
    with open(tmp_path / name, "ab") as f:
        f.write(b'{"n":4,"prev":"ab')        # power lost mid-write
    w = make_writer(tmp_path, key, clock)
    write_events(w, clock, fake_time, 1)
    w.close()
    rs = records_after_torn = [json.loads(l) for n in chain.log_files(str(tmp_path))[1:]
                               for l in (tmp_path / n).read_bytes().splitlines()]
    assert rs[0]["type"] == "log.torn_tail" and rs[0]["n"] == 4
    assert rs[0]["details"]["file"] == name and rs[0]["details"]["bytes"] == 17
    report = verify(str(tmp_path), signing.load_public(pub))
    assert report.ok, report.problems
    assert any("torn" in n for n in report.notes)
    assert records_after_torn[-1]["n"] == 5


def test_retention_prunes_whole_files_with_a_signed_record(tmp_path, keypair, clock, fake_time):
    key, pub = keypair
    w = make_writer(tmp_path, key, clock)
    for day in range(5):
        write_events(w, clock, fake_time, 3)
        fake_time.advance(86400)
    today = clock.stamp().time[:10]
    removed = w.prune(keep_days=2, today=today)
    write_events(w, clock, fake_time, 1)
    w.close()
    assert len(removed) == 3 and all(not os.path.exists(tmp_path / f) for f in removed)
    pruned = [r for r in records(tmp_path) if r["type"] == "log.pruned"]
    assert pruned and pruned[0]["details"]["files"] == removed
    from appliance.evlog import signing
    report = verify(str(tmp_path), signing.load_public(pub))
    assert report.ok, report.problems
    # Positive control: deleting a file *without* a prune record is caught.
    os.unlink(tmp_path / chain.log_files(str(tmp_path))[0])
    assert not verify(str(tmp_path), signing.load_public(pub)).ok


def test_checkpoints_are_signed_and_name_the_head(tmp_path, keypair, clock, fake_time):
    key, pub = keypair
    w = make_writer(tmp_path, key, clock)
    write_events(w, clock, fake_time, 3)
    assert w.checkpoint("interval")
    cps = [json.loads(l) for l in (tmp_path / chain.CHECKPOINTS).read_bytes().splitlines()]
    assert cps[-1]["n"] == 3 and cps[-1]["head"] == w.head and cps[-1]["station"] == "test-station"
    from appliance.evlog import signing
    assert signing.check_checkpoint(signing.load_public(pub), cps[-1]) is None
    forged = dict(cps[-1], n=2)
    assert signing.check_checkpoint(signing.load_public(pub), forged) == "bad signature"


def test_interval_fsync_is_completed_when_idle(tmp_path, keypair, clock, fake_time, monkeypatch):
    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    w = make_writer(tmp_path, keypair[0], clock, fsync="interval", fsync_interval=3600)
    write_events(w, clock, fake_time, 1)
    write_events(w, clock, fake_time, 1)
    count = len(synced)                 # the first write synced; the second waits for the interval
    w.flush()
    assert len(synced) == count + 1
    w.flush()                           # nothing new: no needless fsync
    assert len(synced) == count + 1


def test_a_record_that_cannot_be_encoded_becomes_log_rejected_and_the_log_goes_on(
        tmp_path, keypair, clock, fake_time):
    from .helpers import event
    key, pub = keypair
    writer = make_writer(tmp_path, key, clock, fsync="never")
    deep: dict = {}
    for _ in range(300):                                    # past the encoder's depth
        deep = {"a": deep}
    poison = [event(clock, 2, details={"x": "\ud800"}), event(clock, 3, details=deep)]
    assert writer.write([event(clock, 1), *poison, event(clock, 4)])
    writer.checkpoint("test")
    writer.close()
    got = records(tmp_path)
    assert [r["type"] for r in got[:4]] == ["dns.query", "log.rejected", "log.rejected", "dns.query"]
    assert {r["details"]["seq"] for r in got[1:3]} == {2, 3}
    assert all(len(r["details"]["sha256"]) == 64 for r in got[1:3])
    assert writer.metrics.rejected._value.get() == 2
    from appliance.evlog import signing
    assert verify(str(tmp_path), signing.load_public(pub)).ok
