"""The mitmproxy addon: read SNI and Host, decide with GatePolicy, never decrypt.

TLS is always passed through untouched (relayed as plain TCP, decided in `next_layer`, or
`ignore_connection` in `tls_clienthello`): clients see the real server certificate and
need no CA. A blocked connection is refused in `server_connect`,
**before** any upstream connection exists, which holds only with
`connection_strategy=lazy` (the default, eager, connects before the ClientHello is
read: `running` forces lazy and says so). Plain HTTP gets a 403 with a one-line reason.
Every decision is an event on the daemon's socket; sending never waits, and what could
not be sent is counted.
"""
from __future__ import annotations

import asyncio
import logging

from mitmproxy import ctx, exceptions, http, tls
from mitmproxy.net.tls import starts_like_tls_record
from mitmproxy.proxy import layer, layers, server_hooks
from mitmproxy.proxy.layers.modes import TransparentProxy
from mitmproxy.proxy.layers.tls import parse_client_hello

from ..config import ConfigError
from ..events.clock import Clock
from ..events.event import Event
from ..events.socket import EventSender
from .decide import Decision, GatePolicy
from .follow import load_applied, watched

log = logging.getLogger("gcsguard.gate")
ECH_EXTENSION = 0xFE0D
RELOAD_EVERY = 1.0
NO_POLICY = Decision(True, "no-policy")      # fail closed: nothing passes an unconfigured gate


class EgressGuard:
    def __init__(self) -> None:
        self.gate: GatePolicy | None = None
        self.sender: EventSender | None = None
        self.clock = Clock()
        self.decisions: dict[str, Decision] = {}            # client connection id -> decision
        self._watched: dict[str, float] = {}
        self._task: asyncio.Task | None = None
        self.blocked = self.allowed = 0

    # --- options and policy -------------------------------------------------------------
    def load(self, loader) -> None:
        loader.add_option("gcsguard_config", str, "",
                          "gcsguard's config (e.g. /etc/gcsguard/gcsguard.toml); until it is set "
                          "every connection is refused")

    def configure(self, updated) -> None:
        if "gcsguard_config" in updated and ctx.options.gcsguard_config:
            try:
                self.reload()
            except (ConfigError, ValueError) as e:
                raise exceptions.OptionsError(str(e)) from None

    def reload(self) -> None:
        """Load the policy the daemon applied (gate/follow.py); on any error the old one stays."""
        self.gate = load_applied(ctx.options.gcsguard_config, self.gate)
        config = self.gate.policy.config
        if self.sender is None or self.sender.path != config.events.socket:
            self.sender = EventSender(config.events.socket)
        self._watched = watched(config.appliance.state_dir)
        self._emit("gate.policy_loaded", "info", "load", details={
            "config_sha256": config.sha256, "lists_sha256": self.gate.lists.sha256,
            "mode": config.firewall.mode, "learned": sum(map(len, self.gate.learned.kinds.values()))})

    async def _watch(self) -> None:
        """The daemon reloads on SIGHUP and saves learned addresses as it learns: follow both."""
        while True:
            await asyncio.sleep(RELOAD_EVERY)
            if self.gate is None:
                continue
            now = watched(self.gate.policy.config.appliance.state_dir)
            if now != self._watched:
                try:
                    self.reload()
                except (ConfigError, ValueError) as e:     # retried at the next change
                    self._watched = now
                    self._emit("gate.reload_failed", "error", "not-applied",
                               details={"error": str(e)[:2000]})

    def running(self) -> None:
        if ctx.options.connection_strategy != "lazy":
            log.warning("connection_strategy=%s would connect upstream before reading the "
                        "ClientHello: forcing lazy", ctx.options.connection_strategy)
            ctx.options.connection_strategy = "lazy"
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    # --- decisions ------------------------------------------------------------------------
    def next_layer(self, data: layer.NextLayer) -> None:
        """Decide a TLS connection as soon as its whole ClientHello is in and relay it as plain
        TCP from the start (mitmproxy's own `ignore_hosts` path), sparing the tls_clienthello
        hook and mitmproxy's two TLS layers, which every relayed chunk would cross. A blocked
        one is refused in `server_connect` all the same."""
        context = data.context
        if data.layer is not None or len(context.layers) != 1 \
                or not isinstance(context.layers[0], TransparentProxy):
            return              # not the connection's first decision, or mitmproxy's came first
        client_data = data.data_client()
        if context.client.transport_protocol != "tcp" or not starts_like_tls_record(client_data):
            return
        try:
            hello = parse_client_hello(client_data)
        except ValueError:
            return                                    # mitmproxy's TLS layer refuses it
        if hello is None:
            return                                    # in pieces: tls_clienthello decides
        self._decide_tls(hello, context.client, context.server)
        data.layer = layers.TCPLayer(context, ignore=True)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        data.ignore_connection = True                          # never intercept: pass through
        self._decide_tls(data.client_hello, data.context.client, data.context.server)

    def _decide_tls(self, hello: tls.ClientHello, client, server) -> None:
        address, port = server.address or ("", 0)
        ech = any(ext[0] == ECH_EXTENSION for ext in hello.extensions)
        sni = hello.sni                          # a property that validates the name each time
        decision = self.gate.tls(sni, address, port, ech) if self.gate else NO_POLICY
        self.decisions[client.id] = decision
        self._decided("tls.decision", decision, client, server, {
            "alpn": [p.decode(errors="replace") for p in hello.alpn_protocols], "ech": ech,
            "sni": sni or ""})

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        decision = self.decisions.get(data.client.id)
        if decision is None:                    # neither TLS nor HTTP (an extra port): by address
            address, port = data.server.address or ("", 0)
            decision = self.gate.tls(None, address, port) if self.gate else NO_POLICY
            self.decisions[data.client.id] = decision
            self._decided("tcp.decision", decision, data.client, data.server, {})
        if decision.block:
            data.server.error = f"blocked by gcsguard ({decision.reason})"

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        request = flow.request
        address, port = flow.server_conn.address or ("", 0)
        host = request.host_header or ""
        if self.gate is None:
            decision = NO_POLICY
        else:
            decision = self.gate.http(host, request.path, address, port)
        if not decision.block and request.authority and request.authority != host:
            decision = self.gate.http(request.authority, request.path, address, port)  # absolute-form
        self.decisions[flow.client_conn.id] = decision
        self._decided("http.decision", decision, flow.client_conn, flow.server_conn, {
            "method": request.method, "path": request.path[:200], "host": host})
        if decision.block:
            flow.response = http.Response.make(
                403, f"blocked by gcsguard: {decision.reason} {decision.name}\n".encode(),
                {"Content-Type": "text/plain"})

    def client_disconnected(self, client) -> None:
        self.decisions.pop(client.id, None)

    # --- events ---------------------------------------------------------------------------
    def _decided(self, type: str, decision: Decision, client, server, details: dict) -> None:
        if decision.block:
            self.blocked += 1
        else:
            self.allowed += 1
        address, port = server.address or ("", 0)
        peer = client.peername or ("", 0)
        action = "block" if decision.block else "log" if decision.reason == "audit-vendor" else "allow"
        self._emit(type, action, decision.reason,
                   device_ip=peer[0], name=decision.name, vendor=decision.vendor,
                   category=decision.category,
                   details={**details, "dst": address, "dport": port, "sport": peer[1],
                            "layer": type.split(".")[0]})

    def _emit(self, type: str, action: str, reason: str, **fields) -> None:
        if self.sender is None:
            return
        event = Event(type=type, stamp=self.clock.stamp(), action=action, reason=reason,
                      source="gate", **fields)
        if not self.sender.send(event) and self.sender.unsent % 1000 == 1:
            log.warning("daemon unreachable: %d gate events not sent (enforcement goes on)",
                        self.sender.unsent)

