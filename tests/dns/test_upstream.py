"""Every upstream query uses a fresh source port and a random ID; spoofs are ignored."""
import asyncio
import socket
import struct

import dnslib
from prometheus_client import CollectorRegistry

from appliance.dns import wire
from appliance.dns.upstream import Forwarder, Server


def client_query(name="www.allowed.example"):
    return wire.parse_query(dnslib.DNSRecord(dnslib.DNSHeader(id=4242),
                                             q=dnslib.DNSQuestion(name)).pack())


def test_random_ports_and_ids_and_spoofs_ignored():
    async def run():
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        up.bind(("127.0.0.1", 0))
        up.setblocking(False)
        loop = asyncio.get_running_loop()
        seen = []

        async def upstream():
            for _ in range(20):
                data, addr = await loop.sock_recvfrom(up, 4096)
                request = dnslib.DNSRecord.parse(data)
                seen.append((addr[1], request.header.id))
                reply = request.reply()
                reply.add_answer(dnslib.RR(request.q.qname, rdata=dnslib.A("198.51.100.80")))
                spoof = reply.pack()
                spoof = struct.pack("!H", (request.header.id + 1) & 0xFFFF) + spoof[2:]
                up.sendto(spoof, addr)                       # wrong ID first: must be ignored
                up.sendto(reply.pack(), addr)
        task = asyncio.create_task(upstream())
        f = Forwarder([Server("127.0.0.1", up.getsockname()[1])], 1.0, CollectorRegistry())
        responses = [await f.resolve(client_query()) for _ in range(20)]
        await task
        up.close()
        return seen, responses

    seen, responses = asyncio.run(run())
    assert all(r is not None and r[:2] == struct.pack("!H", 4242) for r in responses)
    ports, ids = {p for p, _ in seen}, {i for _, i in seen}
    assert len(ports) >= 18 and len(ids) >= 18          # fresh port and ID nearly every time


def test_all_upstreams_down_fails_within_the_bound():
    async def run():
        dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dead.bind(("127.0.0.1", 0))                      # never answers
        registry = CollectorRegistry()
        f = Forwarder([Server("127.0.0.1", dead.getsockname()[1])] * 2, 0.2, registry)
        loop = asyncio.get_running_loop()
        start = loop.time()
        result = await f.resolve(client_query())
        dead.close()
        return result, loop.time() - start

    result, elapsed = asyncio.run(run())
    assert result is None and elapsed < 0.6


def test_queries_beyond_the_in_flight_bound_fail_at_once_and_are_counted():
    """Two may wait on a silent upstream; the other three are refused at once, nothing sent
    for them. Control: once the two are done, a query is forwarded again."""
    async def run():
        dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dead.bind(("127.0.0.1", 0))
        dead.setblocking(False)
        registry = CollectorRegistry()
        f = Forwarder([Server("127.0.0.1", dead.getsockname()[1])], 0.3, registry, max_in_flight=2)
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = [asyncio.create_task(f.resolve(client_query())) for _ in range(5)]
        await asyncio.sleep(0.05)
        refused_at_once = [t.done() for t in tasks]
        await asyncio.gather(*tasks)
        received = 0
        while True:
            try:
                dead.recv(4096)
                received += 1
            except BlockingIOError:
                break
        await f.resolve(client_query())                  # the bound frees up again
        dead.recv(4096)
        dead.close()
        return refused_at_once, received, registry.get_sample_value("gcsguard_dns_upstream_overload_total"), loop.time() - start

    refused_at_once, received, overload, elapsed = asyncio.run(run())
    assert refused_at_once == [False, False, True, True, True]
    assert received == 2 and overload == 3
