"""An export of a lab run verifies on a clean copy with only the public key, and every kind
of tampering is named: a member altered, removed or added, the manifest edited, the whole
bundle re-signed with another key, a packet changed, and (below the manifest) a log record
edited by someone holding the real key."""
import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

import pytest

from appliance.evlog import signing
from appliance.lab.internet import VENDOR
from appliance.review.bundle import verify_bundle


def gcsguard(*args):
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def bundle(lab, tmp_path_factory):
    started = time.time() - 1
    lab.run("ctl", "curl", "-s", "-m", "1", f"http://{VENDOR}:8080/")       # a logged packet
    lab.run("ctl", "dig", "+time=1", "+tries=1", "mydjiflight.dji.com")
    time.sleep(1.5)
    out = tmp_path_factory.mktemp("export") / "station.tar.gz"
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started - 3600))
    result = gcsguard("review", "export", "-c", lab.config_path, "--from", since, "--to", now,
                      "--out", str(out))
    assert result.returncode == 0, result.stderr
    return str(out), os.path.join(lab.directory, "keys", "log-signing.pub")


def repack(src, dst, change=lambda name, data: data, add=None, drop=()):
    with tarfile.open(src) as old, tarfile.open(dst, "w:gz") as new:
        for member in old.getmembers():
            if member.name in drop:
                continue
            data = change(member.name, old.extractfile(member).read())
            member.size = len(data)
            new.addfile(member, io.BytesIO(data))
        for name, data in (add or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            new.addfile(info, io.BytesIO(data))


def members(path):
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_a_clean_copy_verifies_with_only_the_public_key(bundle, tmp_path):
    path, pub = bundle
    copy = tmp_path / "copy.tar.gz"
    shutil.copy(path, copy)                      # another machine: nothing but the two files
    result = gcsguard("review", "verify-bundle", str(copy), "--pubkey", pub)
    assert result.returncode == 0 and "VERIFIED" in result.stdout, result.stdout
    names = members(path)
    assert {"MANIFEST.json", "MANIFEST.sig", "pubkey.pem", "policy/gcsguard.toml",
            "policy/loads.json", "verification/runs.json"} <= set(names)
    assert any(n.startswith("log/events-") for n in names) and any(n.startswith("pcap/") for n in names)
    assert any(n.startswith("policy/lists/vendors/") for n in names)
    loads = {r["type"] for r in json.loads(names["policy/loads.json"])}
    assert {"config.loaded", "lists.loaded", "firewall.applied"} <= loads
    assert "packets of the period match" in result.stdout


def test_every_kind_of_tampering_is_named(bundle, tmp_path):
    path, pub = bundle
    trusted = signing.load_public(pub)
    log_name = next(n for n in members(path) if n.startswith("log/events-"))
    pcap_name = next(n for n in members(path) if n.startswith("pcap/"))

    def problems(**repack_args):
        tampered = tmp_path / "t.tar.gz"
        repack(path, tampered, **repack_args)
        return verify_bundle(str(tampered), trusted).problems

    def flip_last_byte_of_a_packet(name, data):
        return data[:-1] + bytes([data[-1] ^ 1]) if name == pcap_name else data
    edited = problems(change=lambda n, d: d.replace(b'"mydjiflight.dji.com"', b'"mydjiflight.dji.org"')
                      if n == log_name else d)
    assert f"{log_name}: altered (its SHA-256 is not the manifest's)" in edited
    assert problems(drop=(log_name,))[0] == f"{log_name}: missing"
    assert problems(add={"log/extra.jsonl": b"{}\n"}) == ["log/extra.jsonl: not in the manifest (added)"]
    assert f"{pcap_name}: altered (its SHA-256 is not the manifest's)" in problems(
        change=flip_last_byte_of_a_packet)
    assert problems(change=lambda n, d: d.replace(b'"station"', b'"statio_"')
                    if n == "MANIFEST.json" else d)[0].startswith("MANIFEST.json: the signature")

    # a forger re-signs everything with a key of their own: only the trusted key exposes it
    forged_key, forged_pub = str(tmp_path / "f.key"), str(tmp_path / "f.pub")
    signing.generate_key(forged_key, forged_pub)
    key = signing.load_private(forged_key)

    manifest = json.loads(members(path)["MANIFEST.json"])
    forged_pem = open(forged_pub, "rb").read()
    manifest["files"]["pubkey.pem"]["sha256"] = hashlib.sha256(forged_pem).hexdigest()
    forged_manifest = json.dumps(manifest, indent=1, sort_keys=True).encode()
    replace = {"pubkey.pem": forged_pem, "MANIFEST.json": forged_manifest,
               "MANIFEST.sig": base64.b64encode(key.sign(forged_manifest)) + b"\n"}
    forged = tmp_path / "forged.tar.gz"
    repack(path, forged, change=lambda name, data: replace.get(name, data))
    assert verify_bundle(str(forged), trusted).problems[:2] == [
        "pubkey.pem: not the trusted public key",
        "MANIFEST.json: the signature does not match (altered, or signed by another key)"]
    genuine = verify_bundle(path)                 # without --pubkey: nothing proves its origin
    assert genuine.outcome == "UNVERIFIABLE" and not genuine.problems, genuine
    assert "proves no origin" in genuine.unverifiable[0]


def test_a_record_edited_under_a_valid_signature_still_breaks_the_chain(bundle, lab, tmp_path):
    """Even someone holding the appliance's key cannot edit a record unseen: the checkpoints."""
    path, pub = bundle
    key = signing.load_private(os.path.join(lab.directory, "keys", "log-signing.key"))
    files = members(path)
    log_name = next(n for n in files if n.startswith("log/events-"))
    lines = files[log_name].splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"type":"', b'"type":"x', 1)
    files[log_name] = b"".join(lines)
    manifest = json.loads(files["MANIFEST.json"])
    manifest["files"][log_name]["sha256"] = hashlib.sha256(files[log_name]).hexdigest()
    files["MANIFEST.json"] = json.dumps(manifest, indent=1, sort_keys=True).encode()
    files["MANIFEST.sig"] = base64.b64encode(key.sign(files["MANIFEST.json"])) + b"\n"
    resigned = tmp_path / "resigned.tar.gz"
    repack(path, resigned, change=lambda n, d: files[n])
    problems = verify_bundle(str(resigned), signing.load_public(pub)).problems
    assert problems == [f"{log_name}:3: edited: record 3 was altered: its hash no longer matches "
                        f"the prev field of record 4 ({log_name[4:]}:4)"]
