"""The mitmproxy addon: read SNI and Host, decide with the policy's judge, never decrypt.

TLS is always passed through untouched (relayed as plain TCP, decided in `next_layer`, or
`ignore_connection` in `tls_clienthello`): clients see the real server certificate and
need no CA. A TLS connection is decided only on its whole ClientHello, however it was
segmented: until then nothing is relayed, and one that never completes it is closed
after `HELLO_DEADLINE` and recorded as refused. A blocked connection is refused in `server_connect`,
**before** any upstream connection exists, which holds only with
`connection_strategy=lazy` (the default, eager, connects before the ClientHello is
read: `running` forces lazy and says so). Plain HTTP gets a 403 with a one-line reason.
Every decision is an event on the daemon's socket; sending never waits, and what could
not be sent is counted.
"""
from __future__ import annotations

import asyncio
import logging
import time

from mitmproxy import ctx, exceptions, http, tls
from mitmproxy.addons.next_layer import NextLayer
from mitmproxy.proxy import layer, layers, server_hooks
from mitmproxy.proxy.layers.modes import TransparentProxy
from mitmproxy.proxy.layers.tls import parse_client_hello

from ..config import ConfigError
from ..events.clock import Clock
from ..events.event import Event
from ..events.socket import EventSender
from ..policy import Judge, Verdict
from .bounds import ClientBounds
from .follow import load_applied, watched
from .hello import could_be_tls, has_ech, server_name

log = logging.getLogger("gcsguard.gate")
RELOAD_EVERY = 1.0
HELLO_DEADLINE = 5.0                         # seconds a client may take to send its ClientHello
CAPPED_EVERY = 10.0                          # seconds between gate.client_capped summaries
NO_POLICY = Verdict("block", "no-policy")    # fail closed: nothing passes an unconfigured gate
BAD_HELLO = Verdict("block", "bad-sni")      # a ClientHello that does not parse
INCOMPLETE = Verdict("block", "hello-incomplete")
SILENT = Verdict("block", "handshake-timeout")   # showed no whole request or hello in time


class EgressGuard:
    def __init__(self) -> None:
        self.gate: Judge | None = None
        self.sender: EventSender | None = None
        self.clock = Clock()
        self.decisions: dict[str, Verdict] = {}             # client connection id -> verdict
        self.waiting: dict[str, tuple] = {}    # ClientHello not whole yet: (since, client, server)
        self._watched: dict[str, float] = {}
        self._task: asyncio.Task | None = None
        self.blocked = self.allowed = 0
        self.layers = NextLayer()                # mitmproxy's choice, for what we do not decide
        self.bounds = ClientBounds(256, HELLO_DEADLINE)     # from [gate] once a config loads
        self._capped_at = time.monotonic()

    # --- options and policy -------------------------------------------------------------
    def load(self, loader) -> None:
        loader.add_option("gcsguard_config", str, "",
                          "gcsguard's config (e.g. /etc/gcsguard/gcsguard.toml); until it is set "
                          "every connection is refused")
        # The layer decisions are ours alone (next_layer): mitmproxy's NextLayer would decide
        # on a ClientHello's first byte (`mitmdump -s` loads it before us).
        builtin = ctx.master.addons.get("nextlayer")
        if builtin is not None and builtin is not self.layers:
            ctx.master.addons.remove(builtin)

    def configure(self, updated) -> None:
        self.layers.configure(updated)
        if "gcsguard_config" in updated and ctx.options.gcsguard_config:
            try:
                self.reload()
            except (ConfigError, ValueError) as e:
                raise exceptions.OptionsError(str(e)) from None

    def reload(self) -> None:
        """Load the policy the daemon applied (gate/follow.py); on any error the old one stays."""
        self.gate = load_applied(ctx.options.gcsguard_config, self.gate)
        config = self.gate.policy.config
        self.bounds.per_client = config.gate.max_connections_per_client
        self.bounds.handshake = config.gate.handshake_timeout
        if self.sender is None or self.sender.path != config.events.socket:
            self.sender = EventSender(config.events.socket)
        self._watched = watched(config.appliance.state_dir)
        self._emit("gate.policy_loaded", "info", "load", details={
            "config_sha256": config.sha256, "lists_sha256": self.gate.lists.sha256,
            "mode": config.firewall.mode, "learned": sum(map(len, self.gate.learned.kinds.values()))})

    async def _watch(self) -> None:
        """The daemon reloads on SIGHUP and saves learned addresses as it learns: follow both.
        And close connections whose ClientHello is overdue."""
        while True:
            await asyncio.sleep(RELOAD_EVERY)
            self.close_overdue(time.monotonic())
            self.report_capped(time.monotonic())
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
        """Every layer decision. A TLS connection's first one is ours: decided on the whole
        ClientHello and relayed as plain TCP from the start (mitmproxy's own `ignore_hosts`
        path, sparing the tls_clienthello hook and two TLS layers); while the bytes so far
        may still become a ClientHello (1-byte segments too), no layer is chosen, so nothing
        is relayed or decided on a fragment. Everything else is mitmproxy's choice."""
        if data.layer is None and not self._first_tls(data):
            self.layers.next_layer(data)

    def _first_tls(self, data: layer.NextLayer) -> bool:
        """True when this decision is ours: made now, or waiting for the rest of the hello."""
        context = data.context
        if len(context.layers) != 1 or not isinstance(context.layers[0], TransparentProxy) \
                or context.client.transport_protocol != "tcp":
            return False            # not the connection's first decision
        client_data = data.data_client()
        if not could_be_tls(client_data):
            return False                                  # HTTP or other TCP: decided later
        try:
            hello = parse_client_hello(client_data)
        except ValueError:
            self._record(context.client, context.server, BAD_HELLO, "tls.decision",
                         {"error": "not a ClientHello", "bytes": len(client_data)})
            data.layer = layers.TCPLayer(context, ignore=True)   # refused in server_connect
            return True
        if hello is None:
            self.waiting.setdefault(context.client.id,
                                    (time.monotonic(), context.client, context.server))
            self.bounds.watch(context.client.id, context.client, time.monotonic())
            return True                                   # no layer yet: wait for the rest
        self._decide_tls(hello, context.client, context.server)
        data.layer = layers.TCPLayer(context, ignore=True)
        return True

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        data.ignore_connection = True                          # never intercept: pass through
        if data.context.client.id not in self.decisions:
            self._decide_tls(data.client_hello, data.context.client, data.context.server)

    def _decide_tls(self, hello: tls.ClientHello, client, server) -> None:
        self.waiting.pop(client.id, None)
        address, port = server.address or ("", 0)
        sni, valid = server_name(hello.extensions)
        ech = has_ech(hello.extensions)          # decided by the outer SNI all the same
        decision = self.gate.tls(sni, address, port, valid) if self.gate else NO_POLICY
        self._record(client, server, decision, "tls.decision", {
            "alpn": [p.decode(errors="replace") for p in hello.alpn_protocols], "ech": ech,
            "sni": sni or ""})

    def close_overdue(self, now: float) -> None:
        """Refuse (close, record) connections that did not show a whole ClientHello, or a
        request's headers, within the handshake timeout: a silent connection holds a file
        descriptor for nothing."""
        for client_id, client in self.bounds.overdue(now):
            waited = self.waiting.pop(client_id, None)
            details = {"waited_s": self.bounds.handshake}
            if waited is not None:
                self._record(client, waited[2], INCOMPLETE, "tls.decision", details)
            elif client_id not in self.decisions:
                self._record(client, _NoServer, SILENT, "tcp.decision", details)
            _close(client)

    def report_capped(self, now: float) -> None:
        if now - self._capped_at >= CAPPED_EVERY:
            self._capped_at = now
            summary = self.bounds.summary()
            if summary:
                self._emit("gate.client_capped", "block", "client-cap", details=summary)

    def client_connected(self, client) -> None:
        """Each LAN host may hold `max_connections_per_client` at once: one host's flood
        cannot take every file descriptor from the others."""
        address = (client.peername or ("",))[0]
        if not self.bounds.admit(client.id, address, client, time.monotonic()):
            client.error = "gcsguard: too many connections from this client"

    def _record(self, client, server, decision: Verdict, type: str, details: dict) -> None:
        self.decisions[client.id] = decision
        self.bounds.decided(client.id)
        self._decided(type, decision, client, server, details)

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        decision = self.decisions.get(data.client.id)
        if decision is None:                    # neither TLS nor HTTP (an extra port): by address
            address, port = data.server.address or ("", 0)
            decision = self.gate.connection(address, port) if self.gate else NO_POLICY
            self.decisions[data.client.id] = decision
            self.bounds.decided(data.client.id)
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
        self.bounds.decided(flow.client_conn.id)
        if decision.block:                      # enforced first: recording can never undo it
            flow.response = http.Response.make(
                403, f"blocked by gcsguard: {decision.reason} {escaped(decision.name)}\n".encode(),
                {"Content-Type": "text/plain"})
        self._decided("http.decision", decision, flow.client_conn, flow.server_conn, {
            "method": escaped(request.method[:16]), "path": escaped(request.path[:200]),
            "host": escaped(host[:255])})

    def client_disconnected(self, client) -> None:
        waited = self.waiting.pop(client.id, None)
        if waited is not None:                                   # gave up before a whole hello
            self._decided("tls.decision", INCOMPLETE, client, waited[2], {"closed_by": "client"})
        self.decisions.pop(client.id, None)
        self.bounds.release(client.id, (client.peername or ("",))[0])

    # --- events ---------------------------------------------------------------------------
    def _decided(self, type: str, decision: Verdict, client, server, details: dict) -> None:
        if decision.block:
            self.blocked += 1
        else:
            self.allowed += 1
        address, port = server.address or ("", 0)
        peer = client.peername or ("", 0)
        action = "block" if decision.block else "log" if decision.action == "audit" else "allow"
        self._emit(type, action, decision.reason,
                   device_ip=peer[0], name=escaped(decision.name[:255]), vendor=decision.vendor,
                   category=decision.category,
                   details={**details, "dst": address, "dport": port, "sport": peer[1],
                            "layer": type.split(".")[0]})

    def _emit(self, type: str, action: str, reason: str, **fields) -> None:
        if self.sender is None:
            return
        event = Event(type=type, stamp=self.clock.stamp(), action=action, reason=reason,
                      source="gate", **fields)
        try:
            sent = self.sender.send(event)
        except Exception:                       # a record lost, never a decision undone
            self.sender.unsent += 1
            log.exception("recording a %s failed", type)
            return
        if not sent and self.sender.unsent % 1000 == 1:
            log.warning("daemon unreachable: %d gate events not sent (enforcement goes on)",
                        self.sender.unsent)



class _NoServer:
    """The server side of a connection that never named one."""
    address = None


def escaped(text: str) -> str:
    """Text mitmproxy decoded from a client's bytes (undecodable ones as lone surrogates),
    with those bytes written as \\xNN: readable in the log, and encodable."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _close(client) -> None:
    """Close a client connection mitmproxy holds (its handler, by the connection's id)."""
    try:
        proxyserver = ctx.master.addons.get("proxyserver")
        handler = proxyserver.connections.get(client.id) if proxyserver else None
        if handler is not None:
            handler.close_connection(handler.client)
    except Exception:                        # already gone: nothing to close
        log.debug("closing %s failed", client.id, exc_info=True)
