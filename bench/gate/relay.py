"""The floor of the gate benchmark: a bare transparent relay in Python on uvloop, deciding
nothing. What relaying one connection costs in Python at all on this machine, before any
proxy framework.

    python relay.py PORT      (in the appliance's namespace, as the gate's uid)
"""
import asyncio
import socket
import struct
import sys

import uvloop

SO_ORIGINAL_DST = 80          # linux/netfilter_ipv4.h: the destination before the redirect


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
        writer.write_eof()
    except OSError:
        pass


async def relay(client_reader, client_writer) -> None:
    sock = client_writer.get_extra_info("socket")
    port, address = struct.unpack("!2xH4s8x", sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16))
    try:
        first = await client_reader.read(65536)
        server_reader, server_writer = await asyncio.open_connection(socket.inet_ntoa(address), port)
    except OSError:
        client_writer.close()
        return
    server_writer.write(first)
    await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))
    client_writer.close()
    server_writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(relay, "", port)
    print("Proxy listening", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
