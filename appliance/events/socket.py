"""Events from other processes (the TLS gate, commands, the DHCP lease script) over a local
datagram socket, received at a trust boundary (senders.py).

Datagrams, not a stream: a sender never waits on the daemon. If the daemon is down or
its buffer is full the send fails at once and the sender counts it. One datagram
carries one event in the JSON form of `Event.to_dict()`. The kernel tells the daemon
who sent it (SCM_CREDENTIALS); the daemon checks it against that sender's event types
and the schema, then stamps it (time, seq) and names its source itself. A refused
datagram is counted by reason, and summarized in a `socket.rejected` record per interval.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import struct

from prometheus_client import CollectorRegistry, Counter

from .bus import EventBus
from .event import Event
from .senders import MAX_DATAGRAM, REJECTIONS, Rejected, Vocabulary, check

_UCRED = struct.Struct("iII")                 # pid, uid, gid
DRAIN = 256                                   # datagrams per wake-up


class EventSocketServer:
    def __init__(self, path: str, bus: EventBus, registry: CollectorRegistry,
                 identify=None, senders: dict[int, dict[str, str]] | None = None,
                 vocabulary: Vocabulary | None = None) -> None:
        self.path, self.bus, self.identify = path, bus, identify
        self.senders = senders or {}                  # uid -> {event type: source}
        self.vocabulary = vocabulary or Vocabulary(set, set)
        self._received = Counter("gcsguard_socket_events_received_total",
                                 "Events accepted from the local event socket", registry=registry)
        self._rejected = Counter("gcsguard_socket_events_rejected_total",
                                 "Datagrams on the local event socket that were refused, by why",
                                 ["reason"], registry=registry)
        for reason in REJECTIONS:
            self._rejected.labels(reason)
        self._pending: dict[str, int] = {}            # refused since the last summary, by reason
        self._examples: list[dict] = []
        self._sock: socket.socket | None = None

    async def start(self) -> None:
        if os.path.exists(self.path):
            os.unlink(self.path)                     # stale socket from a previous run
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)   # who sent each datagram
        sock.setblocking(False)
        sock.bind(self.path)
        os.chmod(self.path, 0o660)
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._drain)

    def _drain(self) -> None:
        for _ in range(DRAIN):
            try:
                data, ancillary, flags, _ = self._sock.recvmsg(MAX_DATAGRAM, socket.CMSG_SPACE(_UCRED.size))
            except (BlockingIOError, InterruptedError):
                return
            uid = None
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    uid = _UCRED.unpack(value[:_UCRED.size])[1]
            self.receive(data, uid, truncated=bool(flags & socket.MSG_TRUNC))

    def receive(self, data: bytes, uid: int | None, truncated: bool = False) -> Event | None:
        """One datagram from the sender `uid`: published, or refused and counted."""
        try:
            if truncated:
                raise Rejected("size", f"a datagram over {MAX_DATAGRAM} bytes")
            allowed = self.senders.get(uid)
            if allowed is None:
                raise Rejected("sender", f"uid {uid} is not a known sender")
            fields, source = check(data, allowed, self.vocabulary)
        except Rejected as e:
            self._refuse(e, uid, data)
            return None
        self._received.inc()
        fields["details"] = {**fields["details"], "sender_uid": uid}
        device_id, device_name = self._device(fields)
        kind = fields.pop("type")
        return self.bus.emit(kind, source=source, device_id=device_id, device_name=device_name,
                             **fields)

    def _device(self, fields: dict) -> tuple[str, str]:
        """Who the record is about is the daemon's to say: from the lease's MAC, or from the
        address (the gate knows addresses only); never what a sender claims."""
        mac = fields["details"].get("mac") if fields["type"] == "dhcp.lease" else None
        if isinstance(mac, str) and len(mac) == 17:
            return f"mac:{mac.lower()}", ""
        if fields.get("device_ip") and self.identify is not None:
            return self.identify(fields["device_ip"])
        return "", ""

    def _refuse(self, e: Rejected, uid: int | None, data: bytes) -> None:
        self._rejected.labels(e.reason).inc()
        self._pending[e.reason] = self._pending.get(e.reason, 0) + 1
        if len(self._examples) < 8:
            self._examples.append({"reason": e.reason, "why": str(e)[:200], "uid": uid,
                                   "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})

    def summary(self) -> Event | None:
        """A `socket.rejected` record of what was refused since the last one, or None."""
        if not self._pending:
            return None
        details = {"by_reason": self._pending, "examples": self._examples}
        self._pending, self._examples = {}, []
        return self.bus.emit("socket.rejected", action="error", reason="refused", details=details)

    async def report(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.summary()

    def close(self) -> None:
        if self._sock is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            except RuntimeError:
                pass
            self._sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class EventSender:
    """Sender for other processes; counts what it could not deliver. Non-blocking (the
    gate); a command may give `timeout` to wait out a full receive queue instead."""

    def __init__(self, path: str, timeout: float | None = None) -> None:
        self.path = path
        self.sent = 0
        self.unsent = 0
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.settimeout(timeout or 0.0)

    def send(self, event: Event) -> bool:
        # Text a sender took from a client may hold lone surrogates (undecodable bytes):
        # escaped, never a failed send (the daemon's schema check refuses nothing for it).
        data = event.to_json().encode("utf-8", "backslashreplace")
        try:
            self._sock.sendto(data, self.path)
        except OSError:   # daemon down (ENOENT/ECONNREFUSED) or busy (EAGAIN, timeout)
            self.unsent += 1
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        self._sock.close()
