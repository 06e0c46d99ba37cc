"""Ed25519 keys and signed checkpoints of the chain head.

A hash chain alone cannot reveal a cut tail or a log rewritten from the start:
anyone can recompute it. A checkpoint is the chain head (record number and
hash) signed with the appliance's root-only key; checkpoints are small,
self-contained JSON lines meant to be copied off the box, and `review verify`
checks the log against them with only the public key.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_SIGNED_FIELDS = ("n", "head", "file", "time", "station", "key_id", "reason")
# Signed when present: a checkpoint stripped of one no longer matches its signature.
# `every` is the checkpoint interval, so a verifier knows how long an unsigned tail may be.
_OPTIONAL_SIGNED = ("every",)


def generate_key(private_path: str, public_path: str) -> str:
    """Write a new key pair (private 0600); return the key id."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    os.makedirs(os.path.dirname(private_path) or ".", exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    with open(public_path, "wb") as f:
        f.write(public_pem(key.public_key()))
    return key_id(key.public_key())


def load_private(path: str) -> Ed25519PrivateKey:
    with open(path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def load_public(path: str) -> Ed25519PublicKey:
    with open(path, "rb") as f:
        key = serialization.load_pem_public_key(f.read())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _message(fields: dict[str, Any]) -> bytes:
    optional = {k: fields[k] for k in _OPTIONAL_SIGNED if k in fields}
    return json.dumps({**{k: fields[k] for k in _SIGNED_FIELDS}, **optional}, sort_keys=True,
                      separators=(",", ":")).encode()


def sign_checkpoint(key: Ed25519PrivateKey, **fields: Any) -> dict[str, Any]:
    fields["key_id"] = key_id(key.public_key())
    return {**fields, "sig": base64.b64encode(key.sign(_message(fields))).decode()}


def check_checkpoint(key: Ed25519PublicKey, checkpoint: dict[str, Any]) -> str | None:
    """None if the signature is good, else why not."""
    try:
        message = _message(checkpoint)
        key.verify(base64.b64decode(checkpoint["sig"], validate=True), message)
    except KeyError as e:
        return f"missing field {e.args[0]!r}"
    except (InvalidSignature, ValueError):
        return "bad signature"
    return None


class Keyring:
    """The trusted public keys, by key id: a log that spans a key rotation is checked with
    the old and the new key, each checkpoint with the key that signed it."""

    def __init__(self, keys: list[Ed25519PublicKey]) -> None:
        self.keys = {key_id(k): k for k in keys}

    @classmethod
    def load(cls, paths: list[str]) -> "Keyring":
        return cls([load_public(p) for p in paths])

    def check(self, checkpoint: dict[str, Any]) -> str | None:
        key = self.keys.get(checkpoint.get("key_id", ""))
        if key is None:
            return (f"signed by key {checkpoint.get('key_id')!r}, which is not among the trusted "
                    f"keys ({', '.join(sorted(self.keys))})")
        return check_checkpoint(key, checkpoint)
