"""Every kind of tampering is detected and named, and an untouched log verifies."""
import json
import shutil

import pytest

from appliance.evlog import chain, signing
from appliance.evlog.verify import verify

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
    assert verify(str(directory)).ok         # ...against the key the forger left beside them,
    p = problem(directory, pubkey)           # but not against the trusted key
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


def test_log_without_checkpoints_cannot_be_authenticated(log):
    directory, path, pubkey = log
    (directory / chain.CHECKPOINTS).unlink()
    p = problem(directory, pubkey)
    assert p.kind == "unsigned", p


def test_cli_verify_exit_codes(log, capsys):
    from appliance.cli import main
    directory, path, _ = log
    pub = str(directory.parent / "keys" / "log.pub")
    assert main(["review", "verify", str(directory), "--pubkey", pub]) == 0
    assert "INTACT: 20 records" in capsys.readouterr().out
    ls = lines(path)
    del ls[3]
    save(path, ls)
    assert main(["review", "verify", str(directory), "--pubkey", pub]) == 1
    assert f"BROKEN: {path.name}:4: deleted" in capsys.readouterr().out


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
