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
from typing import Any, BinaryIO, Callable

import orjson

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


def complete_size(path: str) -> int:
    """A log file's size up to its last complete record (the daemon may be appending)."""
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        while end > 0:
            step = min(end, 1 << 16)
            f.seek(end - step)
            chunk = f.read(step)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                return end - step + newline + 1
            end -= step
    return 0


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


class _Tee:
    """A file's bytes for tarfile, hashed and handed on line by line as tarfile reads them:
    one pass, in chunks, whatever the file's size."""

    def __init__(self, f: BinaryIO, on_line: Callable[[bytes], None] | None = None) -> None:
        self.f, self.on_line, self.sha, self.rest = f, on_line, hashlib.sha256(), b""

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.sha.update(data)
        if self.on_line is not None:
            lines = (self.rest + data).split(b"\n")
            self.rest = lines.pop()
            for line in lines:
                self.on_line(line)
        return data


class _Bundle:
    def __init__(self, out: str, progress: Callable[[int], object]) -> None:
        # Level 6: most of level 9's ratio on log text at several times its speed.
        self.tar = tarfile.open(out, "w:gz", compresslevel=6)
        self.files: dict[str, dict[str, Any]] = {}
        self.progress = progress

    def add(self, name: str, data: bytes) -> None:
        self._add(name, len(data), _Tee(io.BytesIO(data)))

    def add_file(self, name: str, path: str, size: int | None = None,
                 on_line: Callable[[bytes], None] | None = None) -> None:
        """The first `size` bytes of a file (all of it by default), streamed."""
        with open(path, "rb") as f:
            self._add(name, os.fstat(f.fileno()).st_size if size is None else size, _Tee(f, on_line))
        self.progress(size or 0)

    def _add(self, name: str, size: int, tee: _Tee) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, int(time.time()), 0o644
        self.tar.addfile(info, tee)
        self.files[name] = {"sha256": tee.sha.hexdigest(), "size": size}


class _Scan:
    """What the manifest and the bundle's other members need from the period's records,
    gathered line by line as the log files stream into the bundle."""

    def __init__(self, since: float, until: float) -> None:
        self.since, self.until = since, until
        self.anchor: dict[str, Any] | None = None
        self.last_n, self.head, self.in_period = 0, "", 0
        self.pcaps: set[str] = set()
        self.loads_before: dict[str, dict] = {}     # the last load of each kind before the period
        self.loads: list[dict] = []                 # and those in it
        self.runs: list[dict] = []

    def line(self, raw: bytes) -> None:
        r = orjson.loads(raw)
        if self.anchor is None:
            self.anchor = {"n": r["n"], "prev": r["prev"]}
        self.last_n, self.head = r["n"], chain.line_hash(raw)
        t, kind = parse_rfc3339(r["time"]), r["type"]
        if kind in LOAD_RECORDS:
            if t < self.since:
                self.loads_before[kind] = r
            elif t < self.until:
                self.loads.append(r)
        if not self.since <= t < self.until:
            return
        self.in_period += 1
        pcap = (r.get("details") or {}).get("pcap")
        if isinstance(pcap, dict):
            self.pcaps.add(os.path.basename(pcap["file"]))
        if kind in ("verify.run", "verify.check"):
            self.runs.append(r)


def export(config: Config, since: float, until: float, out: str,
           progress: Callable[[int], object] = lambda n: None,
           names: list[str] | None = None) -> dict[str, Any]:
    """Memory stays bounded whatever the log's size: files stream through, and only the
    period's load records, verification runs and pcap file names are kept. `names`: the
    period's files, where the caller found them already (`period_files`)."""
    log_dir = config.log.directory
    names = period_files(log_dir, since, until) if names is None else names
    if not names:
        raise ExportError(f"{log_dir}: no log records between the given times")
    key = signing.load_private(config.log.signing_key_file)
    bundle, scan = _Bundle(out, progress), _Scan(since, until)
    for name in names:
        path = os.path.join(log_dir, name)
        bundle.add_file(f"log/{name}", path, complete_size(path), scan.line)
    checkpoints = [line for line in _lines(os.path.join(log_dir, chain.CHECKPOINTS))
                   if scan.anchor["n"] <= json.loads(line)["n"] <= scan.last_n]
    bundle.add(f"log/{chain.CHECKPOINTS}", b"".join(line + b"\n" for line in checkpoints))
    for name in sorted(scan.pcaps):
        path = os.path.join(config.evidence.pcap_directory, name)
        if os.path.exists(path):                 # a pruned one: verify-bundle names it missing
            bundle.add_file(f"pcap/{name}", path)
    _policy(config, bundle, [*scan.loads_before.values(), *scan.loads])
    bundle.add("verification/runs.json", json.dumps(scan.runs, indent=1).encode())
    from ..verify.run import results_path
    if os.path.exists(results_path(config)):
        bundle.add_file("verification/last-results.json", results_path(config))
    bundle.add("pubkey.pem", signing.public_pem(key.public_key()))
    manifest = {"format": "gcsguard-export-1", "station": config.appliance.station,
                "from": since, "to": until, "created": time.time(), "key_id": signing.key_id(
                    key.public_key()), "anchor": scan.anchor, "last_n": scan.last_n,
                "head": scan.head,               # the manifest signs the chain's head too
                "records_in_period": scan.in_period, "files": bundle.files}
    text = json.dumps(manifest, indent=1, sort_keys=True).encode()
    signature = base64.b64encode(key.sign(text)) + b"\n"
    bundle.add("MANIFEST.json", text)
    bundle.add("MANIFEST.sig", signature)
    bundle.tar.close()
    return manifest


def _policy(config: Config, bundle: _Bundle, loads: list[dict]) -> None:
    """The config and lists on disk now, and the load records to compare them with: the
    period's, and the last of each kind before it (the policy in force when it began)."""
    if config.path and os.path.exists(config.path):
        text = open(config.path, "rb").read()
        bundle.add("policy/gcsguard.toml", USERINFO.sub(rb"://<redacted>@", text))
    paths = expand([*config.lists.block, *config.lists.allow])
    for path, label in zip(paths, list_labels(paths)):
        if os.path.exists(path):
            bundle.add_file(f"policy/lists/{label}", path)
    bundle.add("policy/loads.json", json.dumps(loads, indent=1).encode())


def _lines(path: str) -> list[bytes]:
    try:
        with open(path, "rb") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []
