"""A small authoritative DNS server for the simulated internet (tests and the lab).

Answers from zone-file text (dnslib parses it), following CNAME chains inside its
data as an authoritative server would, with wildcards and NXDOMAIN + SOA for the
rest. It can be told to go silent or answer SERVFAIL (upstream failure tests), and
counts the queries it received per name (to prove a blocked name never left).
Documentation addresses only.
"""
from __future__ import annotations

import asyncio
import struct
from collections import Counter

import dnslib

from ..config.endpoint import Endpoint

LAB_ZONE = """
$TTL 300
mydjiflight.dji.com.        IN A     203.0.113.10
mydjiflight.dji.com.        IN AAAA  2001:db8::10
flysafe-api.dji.com.        IN A     203.0.113.11
api.dji.com.                IN A     203.0.113.12
telemetry.allowed.example.  IN CNAME edge.allowed.example.
edge.allowed.example.       IN CNAME api.dji.com.
beacon.allowed.example.     IN CNAME mydjiflight.dji.com.
relay.allowed.example.      IN CNAME ingest.dji.com.
ingest.dji.com.             IN A     203.0.113.14
www.allowed.example.        IN A     198.51.100.80
www.allowed.example.        IN AAAA  2001:db8::80
www.allowed.example.        IN MX    10 mail.allowed.example.
chain.allowed.example.      IN CNAME www.allowed.example.
hardcoded.allowed.example.  IN A     198.51.100.250
cdn.allowed.example.        IN A     203.0.113.10
direct.allowed.example.     IN A     198.51.100.99
short.allowed.example.      30 IN A  198.51.100.81
*.bench.example.            IN A     192.0.2.1
dns.google.                 IN A     198.51.100.53
dns.weixin.qq.com.          IN A     203.0.113.53
"""
SOA = dnslib.RR("example.", dnslib.QTYPE.SOA, ttl=300, rdata=dnslib.SOA(
    "ns.example.", "hostmaster.example.", (1, 3600, 600, 86400, 60)))


def big_txt(name: str = "big.allowed.example.", size: int = 3000) -> str:
    """A TXT RRset larger than any UDP answer we allow: forces truncation."""
    chunk = "x" * 200
    return "\n".join(f'{name} IN TXT "{i:03d}{chunk}"' for i in range(size // 200))


class Zone:
    def __init__(self, text: str = LAB_ZONE + big_txt()) -> None:
        self.records: dict[str, list[dnslib.RR]] = {}
        for rr in dnslib.RR.fromZone(text):
            self.records.setdefault(str(rr.rname).lower(), []).append(rr)

    def _lookup(self, name: str) -> list[dnslib.RR]:
        if name in self.records:
            return self.records[name]
        labels = name.split(".")
        for i in range(1, len(labels)):
            wildcard = "*." + ".".join(labels[i:])
            if wildcard in self.records:
                return [dnslib.RR(name, rr.rtype, ttl=rr.ttl, rdata=rr.rdata) for rr in self.records[wildcard]]
        return []

    def answer(self, request: dnslib.DNSRecord) -> dnslib.DNSRecord:
        reply = request.reply()
        reply.header.ra = 0
        reply.header.aa = 1
        q = request.q
        name, seen = str(q.qname).lower(), set()
        while name not in seen:
            seen.add(name)
            rrs = self._lookup(name)
            if not rrs:
                if not reply.rr:
                    reply.header.rcode = dnslib.RCODE.NXDOMAIN
                    reply.add_auth(SOA)
                break
            cname = [rr for rr in rrs if rr.rtype == dnslib.QTYPE.CNAME]
            wanted = [rr for rr in rrs if q.qtype in (rr.rtype, dnslib.QTYPE.ANY)]
            if cname and q.qtype != dnslib.QTYPE.CNAME:
                reply.add_answer(*cname)
                name = str(cname[0].rdata.label).lower()
                continue
            reply.add_answer(*wanted)
            if not wanted and not reply.rr:
                reply.add_auth(SOA)       # NODATA
            break
        opt = next((r for r in request.ar if r.rtype == dnslib.QTYPE.OPT), None)
        if opt is not None:
            reply.add_ar(dnslib.EDNS0(udp_len=1232, flags="do" if opt.ttl & 0x8000 else ""))
        return reply


class ZoneServer:
    """UDP and TCP on one address; `mode` is 'answer', 'silent' or 'servfail'."""

    def __init__(self, host: str, port: int, zone: Zone | None = None) -> None:
        self.host, self.port, self.zone = host, port, zone or Zone()
        self.mode = "answer"
        self.queries: Counter[str] = Counter()
        self._closers: list = []

    def respond(self, data: bytes, tcp: bool) -> bytes | None:
        try:
            request = dnslib.DNSRecord.parse(data)
        except dnslib.DNSError:
            return None
        self.queries[str(request.q.qname).lower().rstrip(".")] += 1
        if self.mode == "silent":
            return None
        if self.mode == "servfail":
            reply = request.reply()
            reply.header.rcode = dnslib.RCODE.SERVFAIL
            return reply.pack()
        reply = self.zone.answer(request)
        packed = reply.pack()
        limit = 1232 if any(r.rtype == dnslib.QTYPE.OPT for r in request.ar) else 512
        if not tcp and len(packed) > limit:
            reply = request.reply()
            reply.header.tc = 1
            packed = reply.pack()
        return packed

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        server = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                response = server.respond(data, tcp=False)
                if response:
                    self.transport.sendto(response, addr)

        transport, _ = await loop.create_datagram_endpoint(Udp, local_addr=(self.host, self.port))
        tcp = await asyncio.start_server(self._tcp, self.host, self.port)
        self._closers = [transport.close, tcp.close]

    async def _tcp(self, reader, writer) -> None:
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                response = self.respond(await reader.readexactly(size), tcp=True)
                if response:
                    writer.write(struct.pack("!H", len(response)) + response)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        for close in self._closers:
            close()


def main(argv: list[str] | None = None) -> None:
    """python -m appliance.lab.zone --listen 127.0.0.1:5399: serve the lab zone until stopped."""
    import argparse
    import signal
    parser = argparse.ArgumentParser(prog="python -m appliance.lab.zone", description=main.__doc__)
    parser.add_argument("--listen", default="127.0.0.1:5399", help="host:port (loopback or a lab namespace)")
    args = parser.parse_args(argv)
    host, port = Endpoint.parse(args.listen)

    async def serve() -> None:
        server = ZoneServer(host, port)
        await server.start()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()
        server.close()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
