"""The soak run's load, inside the lab's controller namespace: a well-behaved station and
a misbehaving client at once, each bounded in rate and time. Prints one JSON line per
window with what the well-behaved client got (its answers and connections, which must
all succeed), then a last line with the totals.

    python load.py INTERVAL SECONDS

Well-behaved (10.70.0.23): DNS for an allowed name (20/s), an HTTP request through the
gate (5/s), a vendor lookup (5/s), a new allowed UDP flow (50/s). Misbehaving (10.70.0.66,
added to the controller's interface by the runner): a DNS flood of random names (1,000/s,
over the per-client rate limit), 32 TCP DNS connections that send and never read, 64 TLS
connections to the gate that never say hello, and DoT attempts (100/s, dropped and logged).
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import sys
import time

import dnslib

RESOLVER, GOOD, BAD = "10.70.0.1", "10.70.0.23", "10.70.0.66"
ALLOWED, PUBLIC_RESOLVER = "198.51.100.80", "198.51.100.53"


def query(name: str) -> bytes:
    return dnslib.DNSRecord.question(name).pack()


class Window:
    def __init__(self, interval: float) -> None:
        self.interval, self.start, self.rows = interval, time.monotonic(), {}

    def count(self, key: str) -> None:
        row = self.rows.setdefault(int((time.monotonic() - self.start) // self.interval), {})
        row[key] = row.get(key, 0) + 1


async def every(rate: float, seconds: float, action) -> None:
    """`action()` `rate` times a second for `seconds`, each in its own task (bounded by time)."""
    loop, start, n = asyncio.get_running_loop(), time.monotonic(), 0
    tasks = set()
    while (elapsed := time.monotonic() - start) < seconds:
        while n < rate * elapsed:
            task = loop.create_task(action())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        await asyncio.sleep(0.005)
    if tasks:
        await asyncio.wait(tasks, timeout=10)


async def udp_dns(name: str, source: str, timeout: float = 2.0) -> bool:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        s.bind((source, 0))
        await loop.sock_sendto(s, query(name), (RESOLVER, 53))
        try:
            data = await asyncio.wait_for(loop.sock_recv(s, 4096), timeout)
        except asyncio.TimeoutError:
            return False
    reply = dnslib.DNSRecord.parse(data)
    return any(str(r.rdata) == ALLOWED for r in reply.rr) if name.startswith("www.") else True


async def http_through_gate() -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            ALLOWED, 80, local_addr=(GOOD, 0)), 3)
        writer.write(b"GET / HTTP/1.1\r\nHost: www.allowed.example\r\nConnection: close\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), 3)
        writer.close()
        return b" 200 " in status
    except (OSError, asyncio.TimeoutError):
        return False


def udp_flow(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((GOOD, 20000 + port % 40000))
        s.sendto(b"x" * 32, (ALLOWED, 5000))


async def hold(host: str, port: int, count: int, seconds: float, payload: bytes = b"") -> None:
    """`count` connections from the misbehaving client that send `payload` and never read."""
    held = []
    for _ in range(count):
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port, local_addr=(BAD, 0)), 2)
            held.append(writer)
        except (OSError, asyncio.TimeoutError):
            pass
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for writer in held:
            if payload and not writer.is_closing():
                writer.write(payload)
        await asyncio.sleep(0.5)
    for writer in held:
        writer.close()


async def main(interval: float, seconds: float) -> None:
    window, rng, flows = Window(interval), random.Random(1), [0]

    async def good_dns():
        window.count("dns_ok" if await udp_dns("www.allowed.example", GOOD) else "dns_fail")

    async def good_http():
        window.count("http_ok" if await http_through_gate() else "http_fail")

    async def vendor():
        await udp_dns("mydjiflight.dji.com", GOOD)
        window.count("vendor")

    async def flow():
        flows[0] += 1
        udp_flow(flows[0])
        window.count("flows")

    async def flood():
        await udp_dns(f"r{rng.randrange(1 << 30)}.flood.example", BAD, timeout=0.5)

    async def dot():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setblocking(False)
            s.bind((BAD, 0))
            try:
                await asyncio.wait_for(asyncio.get_running_loop().sock_connect(s, (PUBLIC_RESOLVER, 853)), 0.2)
            except (OSError, asyncio.TimeoutError):
                pass

    tcp_query = len(query("x.flood.example")).to_bytes(2, "big") + query("x.flood.example")
    await asyncio.gather(
        every(20, seconds, good_dns), every(5, seconds, good_http), every(5, seconds, vendor),
        every(50, seconds, flow), every(1000, seconds, flood), every(100, seconds, dot),
        hold(RESOLVER, 53, 32, seconds, tcp_query * 64), hold(ALLOWED, 443, 64, seconds))
    for index in sorted(window.rows):
        print(json.dumps({"window": index, **window.rows[index]}), flush=True)


if __name__ == "__main__":
    os.nice(5)          # the load, not the appliance, gives way when the cores are short
    asyncio.run(main(float(sys.argv[1]), float(sys.argv[2])))
