"""`gcsguard review export`: one bundle an auditor can check on another machine.

    MANIFEST.json   station, period, the chain anchor, and the SHA-256 and size of every
                    other member; MANIFEST.sig is its Ed25519 signature by the log key
    pubkey.pem      that key's public half (check it against a copy kept off the box)
    log/            the chain files that hold the period (whole: the chain must link) and
                    the signed checkpoints within them
    pcap/           every pcap file an event of the period points into
    policy/         the config file and the list files on disk, and every load record of
                    the period (config, lists, ruleset hashes) to compare them with
    verification/   the period's verification runs (from the log) and the last results

Secrets never appear: the config names files or environment variables for them, and
their contents are not exported.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import tarfile
import time
from typing import Any

from ..config import Config
from ..events.clock import parse_rfc3339
from ..evlog import chain, signing
from ..lists.load import expand
from ..policy import list_labels

LOAD_RECORDS = ("appliance.started", "config.loaded", "lists.loaded", "lists.updated",
                "firewall.applied", "firewall.rejected", "firewall.opened", "config.rejected")


USERINFO = re.compile(rb"://[^/@\s\"']+@")        # credentials inside a URL


class ExportError(Exception):
    pass


def complete_bytes(path: str) -> bytes:
    """A log file up to its last complete record (the daemon may be appending)."""
    with open(path, "rb") as f:
        data = f.read()
    return data[:data.rfind(b"\n") + 1]


def period_files(directory: str, since: float, until: float) -> list[str]:
    """The chain files with a record in [since, until): each runs from its first record's
    time to the next file's."""
    names = chain.log_files(directory)
    starts = []
    for name in names:
        first = next((raw for _, raw, done in chain.read_lines(os.path.join(directory, name)) if done), None)
        starts.append(parse_rfc3339(json.loads(first)["time"]) if first else None)
    chosen = []
    for i, name in enumerate(names):
        begin = starts[i]
        end = next((s for s in starts[i + 1:] if s is not None), float("inf"))
        if begin is not None and begin < until and end >= since:
            chosen.append(name)
    return chosen


class _Bundle:
    def __init__(self, out: str) -> None:
        self.tar = tarfile.open(out, "w:gz")
        self.files: dict[str, dict[str, Any]] = {}

    def add(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
        self.tar.addfile(info, io.BytesIO(data))
        self.files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def export(config: Config, since: float, until: float, out: str) -> dict[str, Any]:
    log_dir = config.log.directory
    names = period_files(log_dir, since, until)
    if not names:
        raise ExportError(f"{log_dir}: no log records between the given times")
    key = signing.load_private(config.log.signing_key_file)
    bundle = _Bundle(out)
    records: list[dict] = []
    for name in names:
        data = complete_bytes(os.path.join(log_dir, name))
        bundle.add(f"log/{name}", data)
        records += [json.loads(line) for line in data.splitlines()]
    anchor = {"n": records[0]["n"], "prev": records[0]["prev"]}
    last_n = records[-1]["n"]
    head = chain.line_hash(data.splitlines()[-1])        # the manifest signs the chain's head too
    checkpoints = [line for line in _lines(os.path.join(log_dir, chain.CHECKPOINTS))
                   if anchor["n"] <= json.loads(line)["n"] <= last_n]
    bundle.add(f"log/{chain.CHECKPOINTS}", b"".join(line + b"\n" for line in checkpoints))
    in_period = [r for r in records if since <= parse_rfc3339(r["time"]) < until]
    pcaps = sorted({os.path.basename(r["details"]["pcap"]["file"]) for r in in_period
                    if isinstance(r.get("details", {}).get("pcap"), dict)})
    for name in pcaps:
        path = os.path.join(config.evidence.pcap_directory, name)
        if os.path.exists(path):                 # a pruned one: verify-bundle names it missing
            bundle.add(f"pcap/{name}", open(path, "rb").read())
    _policy(config, bundle, records, since, until)
    runs = [r for r in in_period if r["type"] in ("verify.run", "verify.check")]
    bundle.add("verification/runs.json", json.dumps(runs, indent=1).encode())
    from ..verify.run import results_path
    if os.path.exists(results_path(config)):
        bundle.add("verification/last-results.json", open(results_path(config), "rb").read())
    bundle.add("pubkey.pem", signing.public_pem(key.public_key()))
    manifest = {"format": "gcsguard-export-1", "station": config.appliance.station,
                "from": since, "to": until, "created": time.time(), "key_id": signing.key_id(
                    key.public_key()), "anchor": anchor, "last_n": last_n, "head": head,
                "records_in_period": len(in_period), "files": bundle.files}
    text = json.dumps(manifest, indent=1, sort_keys=True).encode()
    signature = base64.b64encode(key.sign(text)) + b"\n"
    bundle.add("MANIFEST.json", text)
    bundle.add("MANIFEST.sig", signature)
    bundle.tar.close()
    return manifest


def _policy(config: Config, bundle: _Bundle, records: list[dict], since: float, until: float) -> None:
    """The config and lists on disk now, and the load records to compare them with: the
    period's, and the last of each kind before it (the policy in force when it began)."""
    if config.path and os.path.exists(config.path):
        text = open(config.path, "rb").read()
        bundle.add("policy/gcsguard.toml", USERINFO.sub(rb"://<redacted>@", text))
    paths = expand([*config.lists.block, *config.lists.allow])
    for path, label in zip(paths, list_labels(paths)):
        if os.path.exists(path):
            bundle.add(f"policy/lists/{label}", open(path, "rb").read())
    before: dict[str, dict] = {}
    during = []
    for r in records:
        if r["type"] in LOAD_RECORDS:
            t = parse_rfc3339(r["time"])
            if t < since:
                before[r["type"]] = r
            elif t < until:
                during.append(r)
    bundle.add("policy/loads.json", json.dumps([*before.values(), *during], indent=1).encode())


def _lines(path: str) -> list[bytes]:
    try:
        with open(path, "rb") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []
