"""Appends events to the hash-chained log; signs checkpoints; prunes by retention.

Blocking file I/O: the sink runs these methods in a worker thread, one at a time.
A failed write (full disk, I/O error) is rolled back to the last complete record,
so the chain on disk stays intact; the lost records are counted and, once a write
succeeds again, a `log.loss` record says how many were lost and when.
"""
from __future__ import annotations

import fcntl
import json
import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry, Counter, Gauge

from ..events.clock import Clock
from ..events.event import Event
from . import chain, signing


class LogMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.written = Counter("gcsguard_log_records_written_total", "Records appended to the log",
                               registry=registry)
        self.bytes = Counter("gcsguard_log_written_bytes_total", "Bytes appended to the log",
                             registry=registry)
        self.failures = Counter("gcsguard_log_write_failures_total",
                                "Log writes that failed (disk full, I/O error)", registry=registry)
        self.lost = Counter("gcsguard_log_records_lost_total",
                            "Records lost because a log write failed", registry=registry)
        self.rejected = Counter("gcsguard_log_records_rejected_total",
                                "Records that could not be encoded: a log.rejected record stands "
                                "in each one's place", registry=registry)
        self.checkpoint_time = Gauge("gcsguard_log_last_checkpoint_timestamp_seconds",
                                     "Unix time of the last signed checkpoint", registry=registry)
        self.checkpoint_failures = Counter("gcsguard_log_checkpoint_failures_total",
                                           "Signed checkpoints that could not be written",
                                           registry=registry)


@dataclass(frozen=True)
class Encoded:
    events: list[Event]
    blob: bytes          # the lines, each ending in a newline
    after: int           # the chain position they were encoded to follow
    n: int               # ... and the position and head once they are in
    head: str


@dataclass
class _Loss:
    records: int = 0
    first_time: str = ""
    last_time: str = ""
    errors: set[str] = field(default_factory=set)


class LogWriter:
    def __init__(self, directory: str, key: Ed25519PrivateKey, station: str, clock: Clock,
                 metrics: LogMetrics, *, max_file_bytes: int = 64 << 20,
                 fsync: str = "interval", fsync_interval: float = 1.0) -> None:
        self.directory, self.key, self.station, self.clock = directory, key, station, clock
        self.metrics, self.max_file_bytes = metrics, max_file_bytes
        self.fsync_policy, self.fsync_interval = fsync, fsync_interval
        self.n, self.head = 0, chain.GENESIS
        self._fd = self._lock_fd = -1
        self._name, self._day, self._index, self._size = "", "", 0, 0
        self._last_sync = 0.0
        self._dirty = False           # written since the last fsync
        self._loss = _Loss()
        self.checkpoint_every: float | None = None   # signed into each checkpoint, when known

    # -- opening and continuing the chain ---------------------------------------------------
    def open(self) -> None:
        os.makedirs(self.directory, mode=0o750, exist_ok=True)
        self._lock()
        torn: dict[str, Any] | None = None
        last: dict[str, Any] | None = None
        files = chain.log_files(self.directory)
        if files:   # name the next file after the newest one, whatever state it is in
            newest = chain.FILE_RE.match(files[-1])
            self._day, self._index = newest.group(1), int(newest.group(2))
        for name in reversed(files):
            path = os.path.join(self.directory, name)
            record, line, good_size = chain.last_record(path)
            actual = os.path.getsize(path)
            if good_size != actual and name == files[-1]:
                torn = {"file": name, "offset": good_size, "bytes": actual - good_size}
            if record is not None:
                last = record
                self.n, self.head = record["n"], chain.line_hash(line)
                if torn is None and name == files[-1] and self._size_ok(actual):
                    self._open_file(name)
                break
        with open(os.path.join(self.directory, "pubkey.pem"), "wb") as f:
            f.write(signing.public_pem(self.key.public_key()))
        opening = []
        if torn:   # the fragment stays where it is, as found; the chain says so
            opening.append(self.own_event("log.torn_tail", action="error", reason="torn-write",
                                          details=torn))
        if last is not None:
            opening += self._unclean_stop(last)
        if opening:
            self.write(opening)

    def _unclean_stop(self, last: dict[str, Any]) -> list[Event]:
        """Every writer that stops cleanly signs a `shutdown` checkpoint of its last record:
        a log whose last record has none was left by a crash, a kill or a power loss."""
        cp = chain.last_checkpoint(self.directory)
        if cp.get("reason") == "shutdown" and cp.get("n") == last["n"]:
            return []
        return [self.own_event("appliance.unclean_stop", action="error", reason="no-clean-stop",
                               details={"last_n": last["n"], "last_type": last.get("type"),
                                        "last_time": last.get("time"),
                                        "last_checkpoint": {k: cp.get(k) for k in
                                                            ("n", "reason", "time")}})]

    def _lock(self) -> None:
        """One writer per chain: a second one would fork it."""
        self._lock_fd = os.open(os.path.join(self.directory, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = -1
            raise OSError(f"{self.directory}: the log is in use by another writer") from None

    def _size_ok(self, size: int) -> bool:
        return size < self.max_file_bytes

    def _open_file(self, name: str) -> None:
        if self._fd >= 0:
            self._sync(force=True)
            os.close(self._fd)
        path = os.path.join(self.directory, name)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._name, self._size = name, os.fstat(self._fd).st_size

    def _rotate_if_needed(self, day: str) -> None:
        # A day earlier than the current file's (the clock was set back) keeps the current
        # file: name order must stay chain order.
        if self._fd >= 0 and day <= self._day and self._size_ok(self._size):
            return
        if self._fd >= 0:
            self.checkpoint("rotation")
        if day > self._day:
            self._day, self._index = day, 0
        else:
            self._index += 1
        while os.path.exists(os.path.join(self.directory, chain.file_name(self._day, self._index))):
            self._index += 1
        self._open_file(chain.file_name(self._day, self._index))

    # -- writing -------------------------------------------------------------------------
    def own_event(self, type: str, **fields: Any) -> Event:
        """An event the log writes about itself (seq 0: it never went through the bus)."""
        return Event(type=type, stamp=self.clock.stamp(), source="log", **fields)

    def write(self, events: list[Event]) -> bool:
        return self.commit(self.encode(events))

    def encode(self, events: list[Event]) -> "Encoded":
        """The records' lines, chained from the current head. CPU only, no I/O: the sink
        runs it on its event loop and only `commit` in the worker thread, so the thread
        holds the GIL for a write call, not for a batch's encoding."""
        if self._loss.records:
            events = [self._loss_event(), *events]
        n, head, lines = self.n, self.head, []
        for event in events:
            n += 1
            line = self._encode(n, head, event)
            head = chain.line_hash(line)
            lines.append(line)
        return Encoded(events, b"\n".join(lines) + b"\n", self.n, n, head)

    def commit(self, batch: "Encoded") -> bool:
        """Append an encoded batch; on failure nothing of it is in the chain and it is counted lost."""
        if batch.after != self.n:         # the chain moved since it was encoded (never, from the sink)
            batch = self.encode([e for e in batch.events if e.type != "log.loss"])
        day = batch.events[0].stamp.time[:10]
        try:
            self._rotate_if_needed(day)
            self._append(batch.blob)
        except OSError as e:
            self._record_loss(batch.events, e)
            return False
        self.n, self.head = batch.n, batch.head
        self._size += len(batch.blob)
        self._dirty = True
        self._loss = _Loss()
        self.metrics.written.inc(len(batch.events))
        self.metrics.bytes.inc(len(batch.blob))
        self._sync()
        return True

    def _encode(self, n: int, head: str, event: Event) -> bytes:
        """The record's line; one that cannot be encoded (a lone surrogate, nesting past the
        encoder's depth) becomes a `log.rejected` record in its place, never a dead writer."""
        try:
            return chain.encode(n, head, event.to_dict())
        except (TypeError, ValueError) as e:              # orjson.JSONEncodeError is a TypeError
            raw = repr(event.to_dict()).encode("utf-8", "backslashreplace")
            self.metrics.rejected.inc()
            return chain.encode(n, head, self.own_event(
                "log.rejected", action="error", reason="unencodable", details={
                    "type": event.type[:64].encode("utf-8", "replace").decode(),
                    "source": event.source[:64].encode("utf-8", "replace").decode(),
                    "seq": event.seq, "sha256": hashlib.sha256(raw).hexdigest(),
                    "error": str(e)[:200]}).to_dict())

    def _append(self, blob: bytes) -> None:
        done = 0
        try:
            while done < len(blob):
                done += os.write(self._fd, blob[done:])
        except OSError:
            if done:   # roll back a partial record so the file ends on a complete line
                os.ftruncate(self._fd, self._size)
            raise

    def _record_loss(self, events: list[Event], error: OSError) -> None:
        self.metrics.failures.inc()
        lost = [e for e in events if e.type != "log.loss"]
        self.metrics.lost.inc(len(lost))
        loss = self._loss
        loss.records += len(lost)
        loss.first_time = loss.first_time or (lost[0].stamp.time if lost else "")
        loss.last_time = lost[-1].stamp.time if lost else loss.last_time
        loss.errors.add(os.strerror(error.errno) if error.errno else str(error))

    def _loss_event(self) -> Event:
        loss = self._loss
        return self.own_event("log.loss", action="error", reason="write-failed", details={
            "records_lost": loss.records, "first_time": loss.first_time,
            "last_time": loss.last_time, "errors": sorted(loss.errors)})

    def _sync(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._fd < 0 or not self._dirty or (self.fsync_policy == "never" and not force):
            return
        if force or self.fsync_policy == "always" or now - self._last_sync >= self.fsync_interval:
            try:
                os.fsync(self._fd)
                self._dirty = False
            except OSError:
                self.metrics.failures.inc()
            self._last_sync = now

    def flush(self) -> None:
        """fsync what the interval policy still holds back (called when the sink is idle)."""
        self._sync(force=self.fsync_policy == "interval")

    # -- checkpoints and retention ---------------------------------------------------------
    def checkpoint(self, reason: str = "interval") -> bool:
        if self.n == 0:
            return True
        self._sync(force=True)
        stamp = self.clock.stamp()
        every = {"every": self.checkpoint_every} if self.checkpoint_every else {}
        cp = signing.sign_checkpoint(self.key, n=self.n, head=self.head, file=self._name,
                                     time=stamp.time, station=self.station, reason=reason, **every)
        path = os.path.join(self.directory, chain.CHECKPOINTS)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, json.dumps(cp, separators=(",", ":")).encode() + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            self.metrics.checkpoint_failures.inc()
            return False
        self.metrics.checkpoint_time.set(time.time())
        return True

    def prune(self, keep_days: int, today: str) -> list[str]:
        """Delete whole files older than keep_days, recording it in the chain first."""
        cutoff = _day_minus(today, keep_days)
        old = [f for f in chain.log_files(self.directory) if f[7:17] < cutoff and f != self._name]
        if not old:
            return []
        record, line, _ = chain.last_record(os.path.join(self.directory, old[-1]))
        if record is None:
            return []
        event = self.own_event("log.pruned", reason="retention", details={
            "files": old, "through_n": record["n"], "through_head": chain.line_hash(line),
            "keep_days": keep_days})
        if not (self.write([event]) and self.checkpoint("prune")):
            return []
        for name in old:
            os.unlink(os.path.join(self.directory, name))
        return old

    def close(self) -> None:
        if self._fd >= 0:
            self.checkpoint("shutdown")
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1


def _day_minus(day: str, days: int) -> str:
    from datetime import date, timedelta
    return (date.fromisoformat(day) - timedelta(days=days)).isoformat()
