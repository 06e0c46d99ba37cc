"""The simulated internet: every server the lab's controller may try to reach, on
documentation addresses only, recording each connection or datagram it receives.

`hits.jsonl` is the ground truth of the tests' positive controls: "the vendor host
saw no connection" is read there, and so is "after `firewall open`, it did".
Run inside the lab's internet namespace: python -m appliance.lab.internet DIR
"""
from __future__ import annotations

import asyncio
import base64
import json
import ssl
import struct
import time
import urllib.parse

import dnslib

from .zone import Zone

UPSTREAM_DNS = "192.0.2.53"          # the appliance's upstream resolver (authoritative lab zone)
PUBLIC_RESOLVER = "198.51.100.53"    # a public resolver stand-in: DNS 53, DoT 853, DoH 443
HTTPDNS = "203.0.113.53"             # an HTTPDNS service: GET /d?dn=NAME
VENDOR, VENDOR_API, VENDOR_V6 = "203.0.113.10", "203.0.113.12", "2001:db8::10"
ALLOWED, ALLOWED_V6, HARDCODED = "198.51.100.80", "2001:db8::80", "198.51.100.250"
UNNAMED = "198.51.100.99"            # named only by direct.allowed.example, which only one test asks
WEB_HOSTS = (VENDOR, VENDOR_API, VENDOR_V6, ALLOWED, ALLOWED_V6, HARDCODED, UNNAMED)
QUIC_HOSTS = (VENDOR, ALLOWED)
ADDRESSES = (UPSTREAM_DNS, PUBLIC_RESOLVER, HTTPDNS, *WEB_HOSTS)


class Hits:
    def __init__(self, path: str) -> None:
        self._f = open(path, "a", buffering=1)

    def record(self, service: str, local, peer, proto: str = "tcp", **extra) -> None:
        self._f.write(json.dumps({"t": time.time(), "service": service, "addr": local[0],
                                  "port": local[1], "proto": proto, "peer": peer[0], **extra}) + "\n")


class Internet:
    def __init__(self, directory: str) -> None:
        self.zone = Zone()
        self.directory = directory
        self.hits = Hits(f"{directory}/hits.jsonl")
        self.sni: dict[int, str] = {}
        self.servers: list = []

    async def start(self) -> None:
        for host in (UPSTREAM_DNS, PUBLIC_RESOLVER):
            await self._udp(host, 53, "dns", self._dns_datagram)
            await self._tcp(host, 53, "dns", self._dns_stream)
        await self._tcp(PUBLIC_RESOLVER, 853, "dot", self._dns_stream, tls=True)
        await self._tcp(PUBLIC_RESOLVER, 443, "doh", self._http, tls=True)
        await self._tcp(HTTPDNS, 80, "httpdns", self._http)
        for host in WEB_HOSTS:
            await self._tcp(host, 80, "http", self._http)
            await self._tcp(host, 443, "https", self._http, tls=True)
        await self._tcp(VENDOR, 1883, "mqtt", self._mqtt)
        for host in QUIC_HOSTS:
            await self._udp(host, 443, "quic", lambda data: None)

    async def _tcp(self, host: str, port: int, service: str, handler, tls: bool = False) -> None:
        async def accept(reader, writer):
            self.hits.record(service, writer.get_extra_info("sockname"),
                             writer.get_extra_info("peername"),
                             sni=self.sni.pop(id(writer.get_extra_info("ssl_object")), "")
                             if tls else None)
            try:
                await asyncio.wait_for(handler(reader, writer, service), timeout=10)
            except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()
        self.servers.append(await asyncio.start_server(
            accept, host, port, ssl=self._tls_for(host, port, service) if tls else None))

    def _tls_for(self, host: str, port: int, service: str) -> ssl.SSLContext:
        """This listener's TLS: a ClientHello that reaches it is a hit of its own (stage
        `hello`), even when the handshake never completes (a test's crafted hello)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(f"{self.directory}/server.pem", f"{self.directory}/server.key")

        def hello(obj, name, _):
            self.sni[id(obj)] = name or ""
            self.hits.record(service, (host, port), ("", 0), stage="hello", sni=name or "")
        context.sni_callback = hello
        return context

    async def _udp(self, host: str, port: int, service: str, respond) -> None:
        hits = self.hits

        class Protocol(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                hits.record(service, (host, port), addr, proto="udp",
                            **({"qname": question_name(data)} if service == "dns" else {}))
                reply = respond(data)
                if reply:
                    self.transport.sendto(reply, addr)
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            Protocol, local_addr=(host, port))
        self.servers.append(transport)

    def _dns_datagram(self, data: bytes) -> bytes | None:
        try:
            return self.zone.answer(dnslib.DNSRecord.parse(data)).pack()
        except dnslib.DNSError:
            return None

    async def _dns_stream(self, reader, writer, service) -> None:
        while True:
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            query = await reader.readexactly(size)
            if service == "dns":                           # each question, as over UDP
                self.hits.record("dns-message", writer.get_extra_info("sockname"),
                                 writer.get_extra_info("peername"), qname=question_name(query))
            reply = self._dns_datagram(query) or b""
            writer.write(struct.pack("!H", len(reply)) + reply)
            await writer.drain()

    async def _http(self, reader, writer, service) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        method, target = head.split(" ", 2)[:2]
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in head.split("\r\n")[1:] if line)}
        body = await reader.readexactly(int(headers.get("content-length", 0) or 0))
        url = urllib.parse.urlsplit(target)
        query = urllib.parse.parse_qs(url.query)
        kind, reply = "text/plain", f"hello from {headers.get('host', '?')} ({service})\n".encode()
        if service == "doh" and url.path == "/dns-query":
            question = body if method == "POST" else base64.urlsafe_b64decode(
                query.get("dns", [""])[0] + "==")
            kind, reply = "application/dns-message", self._dns_datagram(question) or b""
        elif url.path.startswith("/bytes/") and url.path[7:].isdigit():      # a download of N bytes
            reply = b"x" * min(int(url.path[7:]), 50_000_000)
        elif service == "httpdns" and url.path == "/d":
            q = dnslib.DNSRecord.question(query.get("dn", ["?"])[0])
            answer = self.zone.answer(q)
            kind, reply = "text/plain", ";".join(str(rr.rdata) for rr in answer.rr
                                                 if rr.rtype == dnslib.QTYPE.A).encode()
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {len(reply)}"
                     "\r\nConnection: close\r\n\r\n".encode() + reply)
        await writer.drain()

    async def _mqtt(self, reader, writer, service) -> None:
        await reader.readexactly(2)                       # CONNECT fixed header (enough to answer)
        writer.write(b"\x20\x02\x00\x00")                 # CONNACK, accepted
        await writer.drain()


def question_name(data: bytes) -> str:
    """The query name a DNS message asks (the tests count what reached the resolver by it)."""
    try:
        return str(dnslib.DNSRecord.parse(data).q.qname).rstrip(".").lower()
    except Exception:                       # dnslib raises more than DNSError on junk
        return "?"


def main(argv: list[str] | None = None) -> None:
    import signal
    import sys
    directory = (argv or sys.argv[1:])[0]

    async def serve() -> None:
        internet = Internet(directory)
        await internet.start()
        print("internet ready", flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
