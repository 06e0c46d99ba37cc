"""Every kind of tampering is detected and named, and an untouched log verifies."""
import json
import shutil

import pytest

from appliance.evlog import chain, signing
from appliance.evlog.verify import UNVERIFIABLE, VERIFIED, verify

from .helpers import make_writer, write_events


@pytest.fixture
def log(tmp_path, keypair, clock, fake_time):
    """A closed log of 20 records in one file, with a final signed checkpoint."""
    key, pub = keypair
    directory = tmp_path / "log"
    w = make_writer(directory, key, clock)
    write_events(w, clock, fake_time, 20)
    w.close()
    path = directory / chain.log_files(str(directory))[0]
    return directory, path, signing.load_public(pub)


def lines(path):
    return path.read_bytes().splitlines()


def save(path, new_lines):
    path.write_bytes(b"\n".join(new_lines) + b"\n")


def problem(directory, pubkey, **kw):
    report = verify(str(directory), pubkey, **kw)
    assert not report.ok, "tampering went undetected"
    return report.problems[0]


def test_untouched_log_verifies(log):
    directory, _, pubkey = log
    report = verify(str(directory), pubkey)
    assert report.ok, report.problems
    assert (report.records, report.first_n, report.last_n) == (20, 1, 20)
    assert report.checkpoints_ok >= 1


def test_edited_record_is_named(log):
    directory, path, pubkey = log
    ls = lines(path)
    ls[9] = ls[9].replace(b'"action":"block"', b'"action":"allow"')
    save(path, ls)
    p = problem(directory, pubkey)
    assert p.kind == "edited" and p.where == f"{path.name}:10", p


def test_deleted_record_is_named(log):
    directory, path, pubkey = log
    ls = lines(path)
    del ls[9]
    save(path, ls)
    p = problem(directory, pubkey)
    assert p.kind == "deleted" and "records 10..10 are missing" in p.message, p


def test_reordered_records_are_named(log):
    directory, path, pubkey = log
    ls = lines(path)
    ls[9], ls[10] = ls[10], ls[9]
    save(path, ls)
    p = problem(directory, pubkey)
    assert p.kind == "reordered" and p.where == f"{path.name}:10", p


def test_inserted_record_is_named(log):
    directory, path, pubkey = log
    ls = lines(path)
    fake = json.loads(ls[10])
    fake.update(prev=chain.line_hash(ls[9]), name="innocent.example")
    ls.insert(10, chain.encode(fake.pop("n"), fake.pop("prev"), fake))
    save(path, ls)
    p = problem(directory, pubkey)
    assert p.kind == "inserted" and p.where == f"{path.name}:12", p


def test_inserted_with_recomputed_chain_is_caught_by_checkpoint(log):
    directory, path, pubkey = log
    ls = [json.loads(l) for l in lines(path)]
    ls.insert(10, dict(ls[10], name="innocent.example"))
    rebuilt, prev = [], chain.GENESIS
    for n, r in enumerate(ls, 1):
        r = {k: v for k, v in r.items() if k not in ("n", "prev")}
        line = chain.encode(n, prev, r)
        prev = chain.line_hash(line)
        rebuilt.append(line)
    save(path, rebuilt)
    p = problem(directory, pubkey)
    assert p.kind in ("rewritten", "truncated"), p


def test_truncated_tail_is_caught(log):
    directory, path, pubkey = log
    save(path, lines(path)[:15])
    p = problem(directory, pubkey)
    assert p.kind == "truncated" and "ends at record 15" in p.message, p


def test_rewritten_whole_with_another_key_is_caught(log, tmp_path, clock, fake_time):
    directory, path, pubkey = log
    forger_key = str(tmp_path / "forger.key")
    signing.generate_key(forger_key, str(tmp_path / "forger.pub"))
    forged = tmp_path / "forged"
    w = make_writer(forged, signing.load_private(forger_key), clock)
    write_events(w, clock, fake_time, 20)
    w.close()
    shutil.rmtree(directory)
    shutil.copytree(forged, directory)       # chain and checkpoints are self-consistent...
    beside = verify(str(directory))          # ...against the key the forger left beside them,
    assert (beside.outcome, beside.problems) == (UNVERIFIABLE, []), beside   # which proves nothing,
    assert "no trusted public key" in beside.unverifiable[0]
    p = problem(directory, pubkey)           # and not against the trusted key
    assert p.kind == "rewritten" and "not among the trusted keys" in p.message, p


def test_rewritten_records_against_kept_checkpoints(log, tmp_path, clock, fake_time, keypair):
    directory, path, pubkey = log
    checkpoints = (directory / chain.CHECKPOINTS).read_bytes()
    shutil.rmtree(directory)
    w = make_writer(directory, keypair[0], clock)      # even the right key cannot rewrite history
    fake_time.advance(5)
    write_events(w, clock, fake_time, 20)
    w.close()
    (directory / "old-checkpoints.jsonl").write_bytes(checkpoints)
    p = problem(directory, pubkey, checkpoints_path=str(directory / "old-checkpoints.jsonl"))
    assert p.kind == "rewritten", p


def test_log_without_checkpoints_is_unverifiable(log):
    directory, path, pubkey = log
    assert verify(str(directory), pubkey).outcome == VERIFIED          # positive control
    (directory / chain.CHECKPOINTS).unlink()
    report = verify(str(directory), pubkey)
    assert report.outcome == UNVERIFIABLE and not report.problems, report
    assert "no signed checkpoint covers any record" in report.unverifiable[0]


def test_nothing_to_verify_is_unverifiable(tmp_path, log):
    _, _, pubkey = log
    missing = verify(str(tmp_path / "no-such-dir"), pubkey)
    assert missing.outcome == UNVERIFIABLE and "no such directory" in missing.unverifiable[0]
    (tmp_path / "empty").mkdir()
    empty = verify(str(tmp_path / "empty"), pubkey)
    assert empty.outcome == UNVERIFIABLE and "no records" in empty.unverifiable[0]


@pytest.fixture
def running_log(tmp_path, keypair, clock, fake_time):
    """60 s of records, a checkpoint every 10 s (as the writer's sink makes them)."""
    key, pub = keypair
    directory = tmp_path / "running"
    w = make_writer(directory, key, clock)
    w.checkpoint_every = 10.0
    for second in range(60):
        write_events(w, clock, fake_time, 5, per_batch=5)      # one batch, then +1 s
        if second % 10 == 9:
            w.checkpoint()
    w.flush()
    return directory, signing.load_public(pub), w


def test_a_short_unsigned_tail_is_a_running_appliance(running_log, clock, fake_time):
    directory, pubkey, w = running_log
    write_events(w, clock, fake_time, 15)                # 3 s after the last checkpoint
    report = verify(str(directory), pubkey)
    assert report.outcome == VERIFIED, report
    assert any("a running appliance's tail" in note for note in report.notes)


def test_a_tail_rewritten_without_its_checkpoints_is_unverifiable(running_log):
    """Half the records rewritten, with the checkpoints that covered them removed: the chain
    links and every remaining checkpoint matches, but 30 s of records are signed by nothing
    though checkpoints came every 10 s."""
    directory, pubkey, w = running_log
    w.close()
    checkpoints = directory / chain.CHECKPOINTS
    kept = [l for l in checkpoints.read_bytes().splitlines() if json.loads(l)["n"] <= 150]
    checkpoints.write_bytes(b"".join(l + b"\n" for l in kept))
    path = directory / chain.log_files(str(directory))[0]
    records = [json.loads(l) for l in path.read_bytes().splitlines()]
    rebuilt, prev = [], chain.GENESIS
    for r in records:
        if r["n"] > 150:
            r = dict(r, action="allow", prev=prev)
        line = chain.encode(r.pop("n"), r.pop("prev"), r)
        prev = chain.line_hash(line)
        rebuilt.append(line)
    save(path, rebuilt)
    report = verify(str(directory), pubkey)
    assert report.outcome == UNVERIFIABLE and not report.problems, report
    assert "more than twice the checkpoint interval (10 s)" in report.unverifiable[0]
    assert report.signed_n == 150


def test_a_checkpoint_stripped_of_its_interval_no_longer_verifies(running_log):
    directory, pubkey, w = running_log
    checkpoints = directory / chain.CHECKPOINTS
    ls = checkpoints.read_bytes().splitlines()
    assert all(json.loads(l)["every"] == 10.0 for l in ls)
    stripped = json.loads(ls[-1])
    del stripped["every"]
    checkpoints.write_bytes(b"\n".join([*ls[:-1], json.dumps(stripped).encode()]) + b"\n")
    p = problem(directory, pubkey)
    assert p.kind == "rewritten" and "bad signature" in p.message, p


def test_losses_and_gaps_are_listed(log, clock, fake_time, keypair):
    directory, _, pubkey = log
    w = make_writer(directory, keypair[0], clock)
    w.write([w.own_event("appliance.stopped", reason="stop")])
    fake_time.advance(600)
    w.write([w.own_event("appliance.started", reason="start"),
             w.own_event("log.loss", action="error", details={
                 "records_lost": 7, "first_time": "a", "last_time": "b"}),
             w.own_event("appliance.unclean_stop", action="error", details={
                 "last_n": 20, "last_time": "2026-11-18T00:00:00Z"})])
    w.close()
    report = verify(str(directory), pubkey)
    assert report.outcome == VERIFIED, report
    assert len(report.gaps) == 2 and "the appliance was stopped" in report.gaps[0]
    assert "ended uncleanly after record 20" in report.gaps[1]
    assert report.losses == [f"{chain.log_files(str(directory))[-1]}:23: 7 records lost "
                             "between a and b (writes failed)"]


def test_cli_verify_exit_codes(log, capsys):
    from appliance.cli import main
    directory, path, _ = log
    pub = str(directory.parent / "keys" / "log.pub")
    assert main(["review", "verify", str(directory), "--pubkey", pub]) == 0
    assert "VERIFIED: 20 records" in capsys.readouterr().out
    assert main(["review", "verify", str(directory)]) == 3          # no trusted key
    assert "UNVERIFIABLE: no trusted public key" in capsys.readouterr().out
    assert main(["review", "verify", str(directory / "nowhere"), "--pubkey", pub]) == 3
    assert "nowhere: no such directory" in capsys.readouterr().out
    ls = lines(path)
    del ls[3]
    save(path, ls)
    assert main(["review", "verify", str(directory), "--pubkey", pub]) == 1
    out = capsys.readouterr().out
    assert f"BROKEN: {path.name}:4: deleted" in out and out.splitlines()[-1].startswith("BROKEN")


def test_a_log_spanning_a_key_rotation_verifies_with_both_keys(log, tmp_path, clock, fake_time):
    directory, _, old = log
    new_key_path, new_pub_path = str(tmp_path / "new.key"), str(tmp_path / "new.pub")
    signing.generate_key(new_key_path, new_pub_path)
    w = make_writer(directory, signing.load_private(new_key_path), clock)   # the key rotated
    write_events(w, clock, fake_time, 5)
    w.close()
    new = signing.load_public(new_pub_path)
    both = verify(str(directory), signing.Keyring([old, new]))
    assert both.ok and both.last_n == 25, both.problems
    only_new = verify(str(directory), new)           # the old key's checkpoints cannot be checked
    assert not only_new.ok and "not among the trusted keys" in str(only_new.problems[0])


def test_a_tail_cut_with_its_checkpoints_is_unverifiable(running_log):
    """Records 231..300 cut, and the checkpoints that named them: what is left links, but
    records 101..230 span 26 s past the last checkpoint left, more than twice the interval."""
    directory, pubkey, w = running_log
    w.close()
    checkpoints = directory / chain.CHECKPOINTS
    kept = [l for l in checkpoints.read_bytes().splitlines() if json.loads(l)["n"] <= 100]
    checkpoints.write_bytes(b"".join(l + b"\n" for l in kept))
    path = directory / chain.log_files(str(directory))[0]
    save(path, lines(path)[:230])
    report = verify(str(directory), pubkey)
    assert report.outcome == UNVERIFIABLE and not report.problems, report
    assert report.signed_n == 100 and report.last_n == 230
    from appliance.cli import main
    out = str(directory.parent / "r.html")
    assert main(["review", "report", str(directory), "--pubkey",
                 str(directory.parent / "keys" / "log.pub"), "--out", out]) == 3
    assert "The claim cannot be made" in open(out).read()


def test_a_collectors_copy_may_hold_lines_delivered_twice_but_nothing_else(log):
    """A shipper replays from its last saved position after a crash: the copy holds a run
    of records again, byte for byte. As a copy that verifies (counted); as a station's own
    log, and with one replayed line altered, it is an insertion."""
    directory, path, pubkey = log
    ls = lines(path)
    save(path, ls[:15] + ls[4:15] + ls[15:])                 # records 5..15 delivered twice
    report = verify(str(directory), pubkey, copy=True)
    assert report.ok and report.duplicates == 11 and report.records == 20, report.problems
    assert problem(directory, pubkey).kind == "inserted"  # the station's own log has no replays
    replayed = ls[4:15]
    replayed[3] = replayed[3].replace(b'"action":"block"', b'"action":"allow"')
    save(path, ls[:15] + replayed + ls[15:])
    assert problem(directory, pubkey, copy=True).kind == "inserted"
