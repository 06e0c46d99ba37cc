"""The resolver's front door: UDP and TCP listeners, who may ask, and how often.

`Frontend.handle` is transport-free (bytes in, bytes or an awaitable out) so the
UDP and TCP servers share it. It never answers a packet that is itself a
response (no reflection loops), drops what it cannot read, answers FORMERR when
at least the header is readable, and never lets malformed input stop the server.
Every message it refuses is counted, and recorded (`refused`) within the sender's
rate limit, so junk cannot flood the log.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
from collections import defaultdict
from typing import Awaitable, Callable

import dnslib
from prometheus_client import CollectorRegistry, Counter

from ..config.endpoint import Endpoint
from . import answers, wire
from .chain import Recorder, Request
from .ratelimit import RateLimiter

MALFORMED = ("short", "response", "formerr", "notimp")
log = logging.getLogger("gcsguard.dns")
REFUSED_RECORDS_PER_S = 10
TCP_BOUNDS = ("total", "client-share", "slow-reader")
TCP_UNREAD_LIMIT = 64 * 1024    # bytes of answers a TCP client may leave unread      # per client; beyond it refused messages are counted, not recorded
# kind, the message, client, over TCP?, the answer sent (None: none)
OnRefused = Callable[[str, bytes, str, bool, "bytes | None"], None]


class Frontend:
    def __init__(self, chain: Recorder, clients: list[str], refuse: str, limiter: RateLimiter,
                 registry: CollectorRegistry, refused: OnRefused | None = None) -> None:
        self.chain, self.refuse, self.limiter = chain, refuse, limiter
        self.on_refused = refused
        # Its own budget: recording junk never spends a client's query allowance.
        self.record_limit = RateLimiter(REFUSED_RECORDS_PER_S, 5 * REFUSED_RECORDS_PER_S)
        self.networks = [ipaddress.ip_network(c) for c in clients]
        self._allowed: dict[str, bool] = {}
        self.malformed = Counter("gcsguard_dns_malformed_total",
                                 "DNS messages dropped or answered with an error code", ["kind"],
                                 registry=registry)
        self.refused = Counter("gcsguard_dns_refused_total",
                               "Queries from outside the configured client networks", registry=registry)
        self.errors = Counter("gcsguard_dns_internal_errors_total",
                              "Queries answered SERVFAIL because answering them failed (a bug)",
                              registry=registry)
        self.limited = Counter("gcsguard_dns_rate_limited_total",
                               "Queries dropped by the per-client rate limit", registry=registry)
        for kind in MALFORMED:
            self.malformed.labels(kind)

    def allowed(self, client: str) -> bool:
        ok = self._allowed.get(client)
        if ok is None:
            if len(self._allowed) > 65536:
                self._allowed.clear()
            address = ipaddress.ip_address(client.split("%")[0])
            if address.version == 6 and address.ipv4_mapped:
                address = address.ipv4_mapped
            ok = self._allowed[client] = any(address in n for n in self.networks)
        return ok

    def handle(self, data: bytes, client: str, tcp: bool) -> bytes | Awaitable[bytes] | None:
        if len(data) < 12 or data[2] & 0x80:    # QR: a response, never answered
            kind = "short" if len(data) < 12 else "response"
            self.malformed.labels(kind).inc()
            return self._refused(kind, data, client, tcp, None)
        if not self.allowed(client):
            self.refused.inc()
            reply = answers.header_only(data, wire.REFUSED) if self.refuse == "refused" else None
            return self._refused("not-a-client", data, client, tcp, reply)
        if not self.limiter.allow(client):
            self.limited.inc()
            return None
        try:
            q = wire.parse_query(data)
        except wire.WireError:
            q = self._slow_parse(data, client, tcp)
            if not isinstance(q, wire.Query):
                return q
        try:
            result = self.chain.resolve(Request(q, client, tcp))
        except Exception:
            return self._failed(q, client, tcp)
        if isinstance(result, bytes):
            return answers.fit(q, result, tcp)
        return self._fit_later(q, result, client, tcp)

    def _slow_parse(self, data: bytes, client: str, tcp: bool) -> wire.Query | bytes | None:
        kind, rcode = "notimp", wire.NOTIMP
        if (data[2] >> 3) & 0xF == 0:
            try:
                return answers.query_from_dnslib(dnslib.DNSRecord.parse(data), data)
            except Exception:                    # dnslib raises DNSError and worse on junk
                kind, rcode = "formerr", wire.FORMERR
        self.malformed.labels(kind).inc()
        return self._refused(kind, data, client, tcp, answers.header_only(data, rcode))

    def _refused(self, kind: str, data: bytes, client: str, tcp: bool, reply: bytes | None) -> bytes | None:
        """Recorded within a per-client budget (a flood of junk is counted, not logged)."""
        if self.on_refused is not None and self.record_limit.allow(client):
            self.on_refused(kind, data, client, tcp, reply)
        return reply

    async def _fit_later(self, q: wire.Query, pending: Awaitable[bytes], client: str,
                         tcp: bool) -> bytes:
        try:
            return answers.fit(q, await pending, tcp)
        except Exception:
            return self._failed(q, client, tcp)

    def _failed(self, q: wire.Query, client: str, tcp: bool) -> bytes:
        """A bug of ours on one query: SERVFAIL to the client, counted, logged and recorded,
        never silence (the client would retry forever) and never a stopped server."""
        self.errors.inc()
        log.exception("answering %r failed", q.name)
        return self._refused("internal-error", q.raw, client, tcp, answers.error(q, wire.SERVFAIL))


class _Udp:
    """A UDP listener that drains its socket on each wake-up.

    asyncio's datagram transport makes one event-loop pass per packet; under load
    reading every queued packet per pass halves the cost of a small query."""

    DRAIN = 256          # packets per pass, so TCP and timers still get their turn

    def __init__(self, frontend: Frontend, host: str, port: int) -> None:
        self.frontend = frontend
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, port))
        self.sock.setblocking(False)
        self.pending: set[asyncio.Future] = set()
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.sock.fileno(), self._drain)

    def _drain(self) -> None:
        recv, handle, send = self.sock.recvfrom, self.frontend.handle, self._send
        for _ in range(self.DRAIN):
            try:
                data, addr = recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:                      # ICMP errors from clients that went away
                continue
            result = handle(data, addr[0], False)
            if result is None:
                continue
            if isinstance(result, bytes):
                send(result, addr)
            else:
                task = asyncio.ensure_future(result)
                self.pending.add(task)
                task.add_done_callback(lambda t, addr=addr: self._sent(t, addr))

    def _send(self, data: bytes, addr) -> None:
        try:
            self.sock.sendto(data, addr)
        except OSError:                          # full buffer or gone: UDP may lose it; the client retries
            pass

    def _sent(self, task: asyncio.Future, addr) -> None:
        self.pending.discard(task)
        if not task.cancelled() and task.exception() is None and self.sock.fileno() >= 0:
            self._send(task.result(), addr)

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


class DnsServer:
    """TCP is bounded three ways: connections in all, per client address, and the answers
    waiting for a client that does not read them (then it is not read from either, and is
    dropped after `tcp_idle`): no LAN client can take the others' share or the memory."""

    def __init__(self, frontend: Frontend, listen: tuple[str, ...], *, tcp_idle: float,
                 tcp_max: int, tcp_per_client: int = 16,
                 registry: CollectorRegistry | None = None) -> None:
        self.frontend, self.listen, self.tcp_idle, self.tcp_max = frontend, listen, tcp_idle, tcp_max
        self.tcp_per_client = tcp_per_client
        self.connections = 0
        self.per_client: defaultdict[str, int] = defaultdict(int)     # client -> connections
        self._closers: list[Callable[[], None]] = []
        self.dropped = Counter("gcsguard_dns_tcp_dropped_total", "TCP DNS connections refused or "
                               "closed by a bound", ["reason"], registry=registry or CollectorRegistry())
        for reason in TCP_BOUNDS:
            self.dropped.labels(reason)

    async def start(self) -> None:
        for address in self.listen:
            host, port = Endpoint.parse(address)
            self._closers.append(_Udp(self.frontend, host, port).close)
            server = await asyncio.start_server(self._tcp, host, port)
            self._closers.append(server.close)

    def close(self) -> None:
        for close in self._closers:
            close()

    async def _tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """RFC 7766: 2-byte framing, several queries a connection, answered as they finish."""
        client = writer.get_extra_info("peername")[0]
        bound = ("total" if self.connections >= self.tcp_max else
                 "client-share" if self.per_client[client] >= self.tcp_per_client else "")
        if bound:
            self.dropped.labels(bound).inc()
            writer.close()
            return
        self.connections += 1
        self.per_client[client] += 1
        # the kernel's share of unread answers bounded too (its autotuning allows megabytes)
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, TCP_UNREAD_LIMIT)
        pending: set[asyncio.Future] = set()
        try:
            while True:
                size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), self.tcp_idle))[0]
                data = await asyncio.wait_for(reader.readexactly(size), self.tcp_idle)
                result = self.frontend.handle(data, client, True)
                if isinstance(result, bytes):
                    writer.write(struct.pack("!H", len(result)) + result)
                elif result is not None:
                    task = asyncio.ensure_future(result)
                    pending.add(task)
                    task.add_done_callback(lambda t: _write_done(t, writer, pending))
                if writer.transport.get_write_buffer_size() > TCP_UNREAD_LIMIT:
                    try:                     # it does not read: neither do we, for a while
                        await asyncio.wait_for(writer.drain(), self.tcp_idle)
                    except asyncio.TimeoutError:
                        self.dropped.labels("slow-reader").inc()
                        break
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, struct.error):
            pass
        finally:
            if pending:
                await asyncio.wait(pending, timeout=self.tcp_idle)
            self.connections -= 1
            self.per_client[client] -= 1
            if not self.per_client[client]:
                del self.per_client[client]
            if writer.transport.get_write_buffer_size():
                writer.transport.abort()     # answers it will not read: not kept for it
            else:
                writer.close()


def _write_done(task: asyncio.Future, writer: asyncio.StreamWriter, pending: set) -> None:
    pending.discard(task)
    if not task.cancelled() and task.exception() is None and not writer.is_closing():
        response = task.result()
        writer.write(struct.pack("!H", len(response)) + response)
