"""`gcsguard review verify-bundle`: check an export with nothing but it and a public key.

In order: the members are plain files with safe names; MANIFEST.sig is a valid signature
of MANIFEST.json by the trusted key; every member the manifest lists is there with its
SHA-256, and nothing else is; the log excerpt's chain links from the manifest's anchor
and matches its signed checkpoints; every packet the period's events point to is in the
pcap files with the SHA-256 its event carries. Every problem names the member.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import tarfile
import tempfile
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..events.clock import parse_rfc3339
from ..evlog import chain, signing
from ..evlog.verify import BROKEN, UNVERIFIABLE, VERIFIED, Report, verify
from ..observe.evidence import extract
from .query import records


@dataclass
class BundleReport:
    problems: list[str] = field(default_factory=list)       # BROKEN
    unverifiable: list[str] = field(default_factory=list)   # UNVERIFIABLE
    notes: list[str] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)
    log: Report | None = None                                # the excerpt's verification

    @property
    def outcome(self) -> str:
        return BROKEN if self.problems else UNVERIFIABLE if self.unverifiable else VERIFIED

    @property
    def ok(self) -> bool:
        return self.outcome == VERIFIED


def verify_bundle(path: str, trusted: signing.Keyring | Ed25519PublicKey | None = None,
                  keep: str | None = None) -> BundleReport:
    """`trusted`: the appliance's public key(s), old ones too across a rotation; `keep`: a
    directory to leave the unpacked bundle in (the report reads it)."""
    if isinstance(trusted, Ed25519PublicKey):
        trusted = signing.Keyring([trusted])
    report = BundleReport()
    with tempfile.TemporaryDirectory() as scratch:
        root = keep or scratch
        if not _unpack(path, root, report):
            return report
        keyring = _check_manifest(root, trusted, report)
        if keyring is not None:
            _check_members(root, report)
            _check_log(root, keyring, report)
            _check_pcaps(root, report)
    return report


def _unpack(path: str, root: str, report: BundleReport) -> bool:
    try:
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                parts = member.name.split("/")
                if not member.isfile() or member.name.startswith("/") or ".." in parts:
                    report.problems.append(f"{member.name}: not a plain file with a safe name")
                    return False
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(root, **safe)
    except (OSError, tarfile.TarError) as e:
        report.problems.append(f"{path}: not a readable bundle ({e})")
        return False
    return True


def _check_manifest(root: str, trusted: signing.Keyring | None,
                    report: BundleReport) -> signing.Keyring | None:
    """The keys to check the rest with, None if the manifest's signature does not hold."""
    try:
        text = open(os.path.join(root, "MANIFEST.json"), "rb").read()
        signature = base64.b64decode(open(os.path.join(root, "MANIFEST.sig"), "rb").read())
        bundled = signing.load_public(os.path.join(root, "pubkey.pem"))
    except (OSError, ValueError) as e:
        report.problems.append(f"MANIFEST.json, MANIFEST.sig or pubkey.pem missing or unreadable: {e}")
        return None
    if trusted is None:
        trusted = signing.Keyring([bundled])
        report.unverifiable.append("no trusted public key: checked with the bundle's own "
                                   "pubkey.pem, which finds tampering but proves no origin; pass "
                                   "--pubkey with a copy of the appliance's key kept elsewhere")
    elif signing.key_id(bundled) not in trusted.keys:
        report.problems.append("pubkey.pem: not the trusted public key")
    if not any(_signed_by(key, signature, text) for key in trusted.keys.values()):
        report.problems.append("MANIFEST.json: the signature does not match (altered, or signed "
                               "by another key)")
        return None
    report.manifest = json.loads(text)
    return trusted


def _signed_by(key: Ed25519PublicKey, signature: bytes, text: bytes) -> bool:
    try:
        key.verify(signature, text)
    except InvalidSignature:
        return False
    return True


def _check_members(root: str, report: BundleReport) -> None:
    listed = report.manifest["files"]
    present = {os.path.relpath(os.path.join(d, n), root).replace(os.sep, "/")
               for d, _, names in os.walk(root) for n in names} - {"MANIFEST.json", "MANIFEST.sig"}
    for name in sorted(listed):
        if name not in present:
            report.problems.append(f"{name}: missing")
        elif hashlib.sha256(open(os.path.join(root, name), "rb").read()).hexdigest() != \
                listed[name]["sha256"]:
            report.problems.append(f"{name}: altered (its SHA-256 is not the manifest's)")
    for name in sorted(present - set(listed)):
        report.problems.append(f"{name}: not in the manifest (added)")


def _check_log(root: str, keyring: signing.Keyring, report: BundleReport) -> None:
    """The excerpt must link from the manifest's anchor to its head (a checkpoint signed at
    export time), and match every checkpoint signed while it was written."""
    m = report.manifest
    directory = os.path.join(root, "log")
    log = verify(directory, keyring, anchor=(m["anchor"]["n"], m["anchor"]["prev"]),
                 signed_head=(m["last_n"], m["head"]))
    report.log = log
    report.problems += [f"log/{p}" for p in log.problems]
    report.unverifiable += [f"log: {why}" for why in log.unverifiable]
    files = chain.log_files(directory)
    _, line, _ = chain.last_record(os.path.join(directory, files[-1])) if files else (None, None, 0)
    if log.ok and (log.last_n != m["last_n"] or line is None or chain.line_hash(line) != m["head"]):
        report.problems.append(f"log: does not end at the head the manifest signed (record "
                               f"{m['last_n']}); it ends at record {log.last_n}")
    report.notes.append(f"log: {log.records} records (n={log.first_n}..{log.last_n}), "
                        f"{log.checkpoints_ok} signed checkpoints match")


def _check_pcaps(root: str, report: BundleReport) -> None:
    m, refs = report.manifest, []
    for r in records(os.path.join(root, "log")):
        pcap = (r.get("details") or {}).get("pcap")
        if pcap and m["from"] <= parse_rfc3339(r["time"]) < m["to"]:
            refs.append((pcap["file"], pcap["index"], pcap["sha256"]))
    result = extract(refs, os.path.join(root, "pcap"), os.devnull)
    report.problems += [f"pcap/{item}: missing (pruned before the export?)" for item in result["missing"]]
    report.problems += [f"pcap/{item}: altered (no longer the packet its event signed)"
                        for item in result["altered"]]
    report.notes.append(f"pcap: {result['written']} of {len(refs)} packets of the period match their events")
