"""Offline list updates: signed, checked whole, swapped in one step, recorded; a bad bundle
changes nothing."""
import io
import os
import subprocess
import sys
import tarfile

from appliance.evlog import signing
from appliance.review.query import records
from tests.conftest import config_file


def gcsguard(*args):
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True,
                          timeout=60)


def station(tmp_path):
    lists = tmp_path / "station-lists"
    (lists / "vendors").mkdir(parents=True)
    (lists / "vendors" / "dji.list").write_text("# vendor: DJI\n# category: vendor\ndji.com\n")
    config = config_file(tmp_path, block=[str(lists / "vendors")])
    signing.generate_key(str(tmp_path / "lists.key"), str(tmp_path / "lists.pub"))
    signing.generate_key(str(tmp_path / "other.key"), str(tmp_path / "other.pub"))
    new = tmp_path / "new"
    (new / "vendors").mkdir(parents=True)
    (new / "vendors" / "dji.list").write_text("# vendor: DJI\n# category: vendor\ndji.com\ndjiservice.org\n")
    (new / "vendors" / "autel.list").write_text("# vendor: Autel\n# category: vendor\nautelrobotics.com\n")
    return config, lists, new


def test_a_signed_bundle_replaces_the_lists_and_is_recorded(tmp_path):
    config, lists, new = station(tmp_path)
    bundle = str(tmp_path / "lists.tar.gz")
    assert gcsguard("lists", "sign", str(new), "--key", str(tmp_path / "lists.key"), "--out", bundle).returncode == 0
    done = gcsguard("lists", "update", bundle, "--pubkey", str(tmp_path / "lists.pub"), "-c", config,
                    "--target", str(lists))
    assert done.returncode == 0, done.stderr
    assert (lists / "vendors" / "autel.list").exists()
    assert "djiservice.org" in (lists / "vendors" / "dji.list").read_text()
    updated, = [r for r in records(str(tmp_path / "log")) if r["type"] == "lists.updated"]
    assert updated["details"]["files"] == 2
    assert updated["details"]["sha256"].startswith(done.stdout.split("sha256 ")[1][:16])
    assert gcsguard("lists", "test", "autelrobotics.com", "-c", config).returncode == 0


def test_bad_bundles_change_nothing(tmp_path):
    config, lists, new = station(tmp_path)
    before = (lists / "vendors" / "dji.list").read_text()
    bundle = str(tmp_path / "lists.tar.gz")
    gcsguard("lists", "sign", str(new), "--key", str(tmp_path / "lists.key"), "--out", bundle)
    wrong_key = gcsguard("lists", "update", bundle, "--pubkey", str(tmp_path / "other.pub"), "-c", config, "--target", str(lists))
    assert wrong_key.returncode == 1 and "signature does not match" in wrong_key.stderr
    data = bytearray(open(bundle, "rb").read())
    data[len(data) // 2] ^= 1
    open(bundle, "wb").write(bytes(data))
    tampered = gcsguard("lists", "update", bundle, "--pubkey", str(tmp_path / "lists.pub"), "-c", config, "--target", str(lists))
    assert tampered.returncode == 1 and "signature does not match" in tampered.stderr
    (new / "vendors" / "broken.list").write_text("no header\n")
    gcsguard("lists", "sign", str(new), "--key", str(tmp_path / "lists.key"), "--out", bundle)
    broken = gcsguard("lists", "update", bundle, "--pubkey", str(tmp_path / "lists.pub"), "-c", config, "--target", str(lists))
    assert broken.returncode == 1 and "broken.list" in broken.stderr
    # a signed bundle that would write outside the list directory
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escaped.list")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"x\n\n"))
    open(bundle, "wb").write(evil.getvalue())
    import base64
    import hashlib
    signature = signing.load_private(str(tmp_path / "lists.key")).sign(
        hashlib.sha256(evil.getvalue()).hexdigest().encode())
    open(bundle + ".sig", "w").write(base64.b64encode(signature).decode())
    escaped = gcsguard("lists", "update", bundle, "--pubkey", str(tmp_path / "lists.pub"), "-c", config, "--target", str(lists))
    assert escaped.returncode == 1 and "refused member" in escaped.stderr
    assert not (tmp_path / "escaped.list").exists()
    assert (lists / "vendors" / "dji.list").read_text() == before
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".lists-")]     # no staging left
