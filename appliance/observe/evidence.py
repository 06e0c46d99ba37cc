"""Packet evidence: the raw bytes of logged packets in rotating, size-bounded pcap files.

scapy's RawPcapWriter stores the bytes as the kernel logged them (LINKTYPE_RAW: an IP
packet, no Ethernet header), never decoded. Every event that has a packet names its
file, its index in that file and the SHA-256 of its bytes; the event is in the signed
log, so a pcap record that was altered no longer matches its event.
"""
from __future__ import annotations

import hashlib
import os
import re
import time
from typing import Callable

from scapy.utils import RawPcapReader, RawPcapWriter

LINKTYPE_RAW = 101
FILE_RE = re.compile(r"^drops-(\d{8}T\d{6})-(\d{4})\.pcap$")


class PcapStore:
    def __init__(self, directory: str, max_file_bytes: int, max_total_bytes: int,
                 on_prune: Callable[[list[str]], None] = lambda names: None,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory, self.max_file_bytes, self.max_total_bytes = directory, max_file_bytes, max_total_bytes
        self.on_prune, self.clock = on_prune, clock
        self._writer: RawPcapWriter | None = None
        self._name, self._index, self._size, self._serial = "", 0, 0, 0
        self.written = self.failures = 0

    def write(self, payload: bytes, timestamp: float | None = None) -> dict | None:
        """Store one packet; returns {"file", "index", "sha256"} or None if the disk refused."""
        try:
            if self._writer is None or self._size >= self.max_file_bytes:
                self._rotate()
            when = timestamp or self.clock()
            sec = int(when)
            self._writer.write_packet(payload, sec=sec, usec=int((when - sec) * 1e6))
        except OSError:
            self.failures += 1                      # counted; the event still says what happened
            self._writer = None
            return None
        ref = {"file": self._name, "index": self._index,
               "sha256": hashlib.sha256(payload).hexdigest()}
        self._index += 1
        self._size += 16 + len(payload)
        self.written += 1
        return ref

    def flush(self) -> None:
        """Write what is buffered: the reader calls this after each datagram of logged
        packets, so a burst costs one write, not one per packet."""
        if self._writer is None:
            return
        try:
            self._writer.flush()
        except OSError:
            self.failures += 1
            self._writer = None

    def _rotate(self) -> None:
        if self._writer is not None:
            self._writer.close()
        os.makedirs(self.directory, mode=0o750, exist_ok=True)
        self._serial += 1
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self.clock()))
        self._name = f"drops-{stamp}-{self._serial % 10000:04d}.pcap"
        self._writer = RawPcapWriter(os.path.join(self.directory, self._name), linktype=LINKTYPE_RAW)
        self._writer.write_header(None)
        self._index, self._size = 0, 24
        self._prune()

    def _prune(self) -> None:
        """Oldest files go first once the directory is over its budget; the caller records it."""
        files = sorted((f for f in os.listdir(self.directory) if FILE_RE.match(f)),
                       key=lambda f: (os.path.getmtime(os.path.join(self.directory, f)), f))
        sizes = {f: os.path.getsize(os.path.join(self.directory, f)) for f in files}
        total, gone = sum(sizes.values()), []
        for name in files:
            if total <= self.max_total_bytes or name == self._name:
                break
            os.unlink(os.path.join(self.directory, name))
            total -= sizes[name]
            gone.append(name)
        if gone:
            self.on_prune(gone)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_packets(path: str) -> list[tuple[bytes, float]]:
    """(bytes, time) of every packet of one of our pcap files."""
    out = []
    for data, meta in RawPcapReader(path):
        out.append((data, meta.sec + meta.usec / 1e6))
    return out


def extract(references: list[tuple[str, int, str]], directory: str, out_path: str) -> dict:
    """Copy the referenced packets (file, index, sha256) into one pcap; report what was
    missing (pruned) or altered (its bytes no longer match the signed event)."""
    by_file: dict[str, list[tuple[int, str]]] = {}
    for name, index, digest in references:
        by_file.setdefault(name, []).append((index, digest))
    report = {"written": 0, "missing": [], "altered": []}
    writer = RawPcapWriter(out_path, linktype=LINKTYPE_RAW)
    writer.write_header(None)
    try:
        for name in sorted(by_file):
            path = os.path.join(directory, os.path.basename(name))
            packets = read_packets(path) if os.path.exists(path) else []
            for index, digest in sorted(by_file[name]):
                if index >= len(packets):
                    report["missing"].append(f"{name}#{index}")
                    continue
                data, when = packets[index]
                if hashlib.sha256(data).hexdigest() != digest:
                    report["altered"].append(f"{name}#{index}")
                    continue
                sec = int(when)
                writer.write_packet(data, sec=sec, usec=int((when - sec) * 1e6))
                report["written"] += 1
    finally:
        writer.close()
    return report
