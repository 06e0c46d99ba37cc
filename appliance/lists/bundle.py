"""Offline list updates: a signed bundle carried in (a USB stick at a station with no
internet), verified before anything changes.

    gcsguard lists sign   DIR --key list-signing.key --out lists.tar.gz   (where lists are made)
    gcsguard lists update lists.tar.gz --pubkey list-signing.pub -c CONFIG  (at the station)

The signature (Ed25519, `BUNDLE.sig`) covers the bundle's SHA-256. An update is checked
whole (signature, then every list loads) before the station's directory is swapped for
the new one in one rename; a bad bundle changes nothing. The change is recorded as a
`lists.updated` event in the signed log.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import tarfile
import tempfile

from cryptography.exceptions import InvalidSignature

from ..evlog import signing
from .load import load


class BundleError(Exception):
    pass


def sign_bundle(directory: str, key_path: str, out: str) -> str:
    """Pack DIR's list files into OUT (tar.gz) and write OUT.sig; returns the SHA-256."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for root, _, files in os.walk(directory):
            for name in sorted(files):
                if name.endswith((".list", ".txt", ".hosts", ".ips")):
                    path = os.path.join(root, name)
                    tar.add(path, arcname=os.path.relpath(path, directory))
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    with open(out, "wb") as f:
        f.write(data)
    signature = signing.load_private(key_path).sign(digest.encode())
    with open(f"{out}.sig", "w") as f:
        f.write(base64.b64encode(signature).decode() + "\n")
    return digest


def _plain_files(tar: tarfile.TarFile, bundle: str) -> list[tarfile.TarInfo]:
    """Regular files and directories under the staging directory only (even signed, a
    bundle must not write outside it)."""
    members = tar.getmembers()
    for m in members:
        if not (m.isfile() or m.isdir()) or m.name.startswith("/") or ".." in m.name.split("/"):
            raise BundleError(f"{bundle}: refused member {m.name!r}: nothing changed")
    return members


def apply_bundle(bundle: str, pubkey_path: str, target: str, max_bad_lines: int) -> dict:
    """Verify, unpack into a staging directory, load every list, then swap it in."""
    try:
        with open(bundle, "rb") as f:
            data = f.read()
        with open(f"{bundle}.sig") as f:
            signature = base64.b64decode(f.read().strip())
    except (OSError, ValueError) as e:
        raise BundleError(f"{bundle}: cannot read the bundle or its .sig: {e}") from None
    digest = hashlib.sha256(data).hexdigest()
    key = signing.load_public(pubkey_path)
    try:
        key.verify(signature, digest.encode())
    except InvalidSignature:
        raise BundleError(f"{bundle}: the signature does not match (key {signing.key_id(key)}): "
                          "nothing changed") from None
    parent = os.path.dirname(os.path.abspath(target))
    staging = tempfile.mkdtemp(prefix=".lists-", dir=parent)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(staging, members=_plain_files(tar, bundle))
        lists, reports = load([d for d, _, _ in os.walk(staging)], [], max_bad_lines)
        failed = [r for r in reports if r.status != "loaded"]
        if failed or not reports:
            raise BundleError(f"{bundle}: " + ("; ".join(f"{os.path.relpath(r.path, staging)}: {r.fatal}"
                                                          for r in failed) or "no list files")
                              + ": nothing changed")
        old = f"{target}.previous"
        shutil.rmtree(old, ignore_errors=True)
        if os.path.exists(target):
            os.rename(target, old)
        os.rename(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {"bundle": os.path.basename(bundle), "sha256": digest, "key_id": signing.key_id(key),
            "files": len(reports), "entries": sum(r.entries for r in reports),
            "lists_sha256": lists.sha256, "target": target}
