"""The Prometheus endpoint: one injected registry served from the event loop.

Served only on the configured (management) addresses. Optional basic auth for a
scraper reached through an untrusted network; the password comes from a secret.
"""
from __future__ import annotations

import asyncio
import base64
import hmac
import platform
import ssl

from prometheus_client import (
    CollectorRegistry,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import __version__
from .config.endpoint import Endpoint
from .config.schema import Secret


def new_registry(station: str = "") -> CollectorRegistry:
    disable_created_metrics()     # *_created series double the series count for no use here
    registry = CollectorRegistry(auto_describe=True)
    Gauge("gcsguard_build_info", "Build of the running appliance and the station it says it is "
          "([appliance] station; always 1)", ["version", "python", "station"],
          registry=registry).labels(__version__, platform.python_version(), station).set(1)
    return registry


class MetricsServer:
    def __init__(self, registry: CollectorRegistry, listen: tuple[str, ...],
                 user: str = "", password: Secret | None = None, tls_cert: str = "",
                 tls_key: str = "") -> None:
        self.registry, self.listen = registry, listen
        self._tls = None
        if tls_cert:        # a TLS scraper upstream (Prometheus `scheme: https`)
            self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._tls.load_cert_chain(tls_cert, tls_key or None)
        self._auth = None
        if user and password:
            token = base64.b64encode(f"{user}:{password.reveal()}".encode()).decode()
            self._auth = f"Basic {token}".encode()
        self._servers: list[asyncio.base_events.Server] = []

    async def start(self) -> None:
        for address in self.listen:
            host, port = Endpoint.parse(address)
            server = await asyncio.start_server(self._handle, host, port, ssl=self._tls)
            self._servers.append(server)

    @property
    def ports(self) -> list[int]:
        return [s.sockets[0].getsockname()[1] for s in self._servers]

    def close(self) -> None:
        for server in self._servers:
            server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, _ = (request_line.split(" ") + ["", ""])[:3]
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (h.partition(":") for h in header_lines if h)}
            if self._auth and not hmac.compare_digest(headers.get("authorization", "").encode(), self._auth):
                await _respond(writer, 401, b"authentication required\n",
                               extra=b'WWW-Authenticate: Basic realm="gcsguard"\r\n')
            elif method != "GET" or target.split("?")[0] != "/metrics":
                await _respond(writer, 404, b"only GET /metrics is served here\n")
            else:
                await _respond(writer, 200, generate_latest(self.registry),
                               content_type=CONTENT_TYPE_LATEST)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
                ConnectionError, UnicodeDecodeError, ssl.SSLError):
            pass
        finally:
            writer.close()


async def _respond(writer: asyncio.StreamWriter, status: int, body: bytes, *,
                   content_type: str = "text/plain; charset=utf-8", extra: bytes = b"") -> None:
    reason = {200: "OK", 401: "Unauthorized", 404: "Not Found"}[status]
    writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n".encode() + extra + b"\r\n" + body)
    await writer.drain()
