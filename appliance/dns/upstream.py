"""Forwarding to the configured upstreams: UDP with TCP retry, failover and health.

Every upstream query gets a fresh socket (so a kernel-randomized source port) and
a random ID, as unbound does: one shared socket would be faster and spoofable.
A response counts only if it comes on that socket with that ID, QR set and the
same question. An upstream that fails three times in a row is skipped for a
while (unless all are down); the whole attempt is bounded by timeout x upstreams.
"""
from __future__ import annotations

import asyncio
import secrets
import socket
import struct
import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge

from ..config.endpoint import Endpoint
from . import wire
from .answers import EDNS_SIZE

DOWN_AFTER = 3
DOWN_FOR = 5.0
MAX_IN_FLIGHT = 1024        # upstream queries at once: each holds a socket (a file descriptor)
RESULTS = ("ok", "timeout", "error", "truncated", "mismatch", "rcode")


@dataclass
class Server:
    host: str
    port: int
    failures: int = 0
    down_until: float = 0.0
    family: int = field(init=False)

    def __post_init__(self) -> None:
        self.family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

    @property
    def label(self) -> str:
        return f"[{self.host}]:{self.port}" if self.family == socket.AF_INET6 else f"{self.host}:{self.port}"


def parse_servers(addresses: tuple[str, ...]) -> list[Server]:
    servers = []
    for a in addresses:
        servers.append(Server(*Endpoint.parse(a)))
    return servers


class Forwarder:
    def __init__(self, servers: list[Server], timeout: float, registry: CollectorRegistry,
                 max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.servers, self.timeout = servers, timeout
        self.max_in_flight, self.in_flight = max_in_flight, 0
        self._refused = Counter("gcsguard_dns_upstream_overload_total",
                                "Queries not forwarded because MAX_IN_FLIGHT were waiting on "
                                "upstreams (answered SERVFAIL)", registry=registry)
        Gauge("gcsguard_dns_upstream_in_flight", "Queries waiting on an upstream",
              registry=registry).set_function(lambda: self.in_flight)
        self._up = Gauge("gcsguard_dns_upstream_up", "1 if the upstream answered its last query",
                         ["upstream"], registry=registry)
        self._queries = Counter("gcsguard_dns_upstream_queries_total",
                                "Queries sent to an upstream, by result", ["upstream", "result"],
                                registry=registry)
        self._counters = {(id(s), r): self._queries.labels(s.label, r) for s in servers for r in RESULTS}
        for s in servers:
            self._up.labels(s.label).set(1)

    def _order(self, now: float) -> list[Server]:
        healthy = [s for s in self.servers if s.down_until <= now]
        return healthy or list(self.servers)

    async def resolve(self, q: wire.Query) -> bytes | None:
        """The upstream's response (with the client's ID restored), or None if all failed or
        too many queries wait already (a flood of unique names must not take every socket)."""
        if self.in_flight >= self.max_in_flight:
            self._refused.inc()
            return None
        self.in_flight += 1
        try:
            return await self._resolve(q)
        finally:
            self.in_flight -= 1

    async def _resolve(self, q: wire.Query) -> bytes | None:
        for server in self._order(time.monotonic()):
            qid = secrets.randbits(16)
            flags = wire.RD | (q.flags & wire.CD)
            message = (wire.HEADER.pack(qid, flags, 1, 0, 0, 1) + q.question
                       + wire.opt_record(EDNS_SIZE, q.do))
            result, response = await self._udp(server, message, qid, q.question)
            if result == "truncated":
                result, response = await self._tcp(server, message, qid, q.question)
            self._counters[id(server), result].inc()
            if result == "ok":
                server.failures, server.down_until = 0, 0.0
                self._up.labels(server.label).set(1)
                return struct.pack("!H", q.id) + response[2:]
            server.failures += 1
            if server.failures >= DOWN_AFTER:
                server.down_until = time.monotonic() + DOWN_FOR
                self._up.labels(server.label).set(0)
        return None

    async def _udp(self, server: Server, message: bytes, qid: int, question: bytes):
        loop = asyncio.get_running_loop()
        sock = socket.socket(server.family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        done: asyncio.Future = loop.create_future()
        try:
            sock.connect((server.host, server.port))      # binds a random ephemeral port
            sock.send(message)
            loop.add_reader(sock.fileno(), _receive, sock, done, qid, question)
            timer = loop.call_later(self.timeout, _settle, done, ("timeout", None))
            try:
                return await done
            finally:
                timer.cancel()
                loop.remove_reader(sock.fileno())
        except OSError:
            return "error", None
        finally:
            sock.close()

    async def _tcp(self, server: Server, message: bytes, qid: int, question: bytes):
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(server.host, server.port), self.timeout)
        except (OSError, asyncio.TimeoutError):
            return "error", None
        try:
            writer.write(struct.pack("!H", len(message)) + message)
            length = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), self.timeout))[0]
            response = await asyncio.wait_for(reader.readexactly(length), self.timeout)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            return "error", None
        finally:
            writer.close()
        if _check(response, qid, question):
            return "mismatch", None
        rcode = struct.unpack_from("!H", response, 2)[0] & 0xF
        return ("ok", response) if rcode in (wire.NOERROR, wire.NXDOMAIN) else ("rcode", None)


def _check(response: bytes, qid: int, question: bytes) -> tuple[str, None] | None:
    """None if the response answers our query, else why not."""
    if len(response) < 12 + len(question):
        return "mismatch", None
    rid, flags = struct.unpack_from("!HH", response)
    if rid != qid or not flags & wire.QR or response[12:12 + len(question)].lower() != question.lower():
        return "mismatch", None
    return None


def _settle(done: asyncio.Future, value) -> None:
    if not done.done():
        done.set_result(value)


def _receive(sock: socket.socket, done: asyncio.Future, qid: int, question: bytes) -> None:
    while not done.done():
        try:
            response = sock.recv(65535)
        except BlockingIOError:
            return
        except OSError:                       # ICMP unreachable: the upstream is not there
            _settle(done, ("error", None))
            return
        if _check(response, qid, question):
            continue                          # not ours (spoofed or stray): keep waiting
        flags = struct.unpack_from("!H", response, 2)[0]
        if flags & wire.TC:
            _settle(done, ("truncated", None))
        elif flags & 0xF not in (wire.NOERROR, wire.NXDOMAIN):
            _settle(done, ("rcode", None))    # SERVFAIL, REFUSED...: try the next upstream
        else:
            _settle(done, ("ok", response))
