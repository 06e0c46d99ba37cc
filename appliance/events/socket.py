"""Events from other processes (the TLS gate, probes) over a local datagram socket.

Datagrams, not a stream: a sender never waits on the daemon. If the daemon is
down or its buffer is full the send fails at once and the sender counts it.
One datagram carries one event in the JSON form of `Event.to_dict()`; the
receiving bus gives it a fresh `seq` and keeps the sender's stamp.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket

from prometheus_client import CollectorRegistry, Counter

from .bus import EventBus
from .event import Event

MAX_DATAGRAM = 64 * 1024


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, bus: EventBus, received: Counter, rejected: Counter, identify) -> None:
        self.bus, self.received, self.rejected, self.identify = bus, received, rejected, identify

    def datagram_received(self, data: bytes, addr: object) -> None:
        try:
            event = Event.from_dict(json.loads(data))
        except (ValueError, UnicodeDecodeError) as e:   # JSONDecodeError is a ValueError
            self.rejected.labels("json" if isinstance(e, json.JSONDecodeError) else "schema").inc()
            return
        self.received.inc()
        if event.device_ip and not event.device_id and self.identify is not None:
            device_id, device_name = self.identify(event.device_ip)   # the gate knows addresses only
            if device_id:
                event = dataclasses.replace(event, device_id=device_id, device_name=device_name)
        self.bus.publish(event)


class EventSocketServer:
    def __init__(self, path: str, bus: EventBus, registry: CollectorRegistry,
                 identify=None) -> None:
        self.path, self.bus, self.identify = path, bus, identify
        self._received = Counter("gcsguard_socket_events_received_total",
                                 "Events accepted from the local event socket", registry=registry)
        self._rejected = Counter("gcsguard_socket_events_rejected_total",
                                 "Datagrams on the local event socket that were not valid events",
                                 ["reason"], registry=registry)
        for reason in ("json", "schema"):
            self._rejected.labels(reason)
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        if os.path.exists(self.path):
            os.unlink(self.path)                     # stale socket from a previous run
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind(self.path)
        os.chmod(self.path, 0o660)
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Receiver(self.bus, self._received, self._rejected, self.identify), sock=sock)

    def close(self) -> None:
        if self._transport:
            self._transport.close()
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
        data = event.to_json().encode()
        try:
            self._sock.sendto(data, self.path)
        except OSError:   # daemon down (ENOENT/ECONNREFUSED) or busy (EAGAIN, timeout)
            self.unsent += 1
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        self._sock.close()
