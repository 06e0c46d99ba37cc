"""The addon under mitmproxy's own test harness (taddons, tflow): hooks, options, events."""
import asyncio
import json
import socket
import ssl
import time

import pytest
from mitmproxy import exceptions, tls
from mitmproxy.proxy import context, layer, layers, server_hooks
from mitmproxy.proxy.events import DataReceived
from mitmproxy.proxy.layers.modes import TransparentProxy
from mitmproxy.proxy.layers.tls import parse_client_hello
from mitmproxy.test import taddons, tflow

from appliance.gate.addon import HELLO_DEADLINE, EgressGuard
from tests.conftest import config_file
from tests.helpers import with_extension


def client_hello_bytes(sni: str | None) -> bytes:
    """A real ClientHello, made by Python's ssl without a network."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = sni is not None
    out = ssl.MemoryBIO()
    sock = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        sock.do_handshake()
    return out.read()


def client_hello(sni: str | None) -> tls.ClientHello:
    return parse_client_hello(client_hello_bytes(sni))


@pytest.fixture
def guarded(tmp_path):
    path = config_file(tmp_path, firewall='mode = "vendor-block"')
    events = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    events.bind(str(tmp_path / "events.sock"))
    events.settimeout(2)
    addon = EgressGuard()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, gcsguard_config=path)
        yield addon, tctx, events
    events.close()


def hello_data(tctx, sni, address=("198.51.100.80", 443)):
    client = tflow.tclient_conn()
    client.peername = ("10.70.0.23", 40001)
    ctx = context.Context(client, tctx.options)
    ctx.server.address = address
    return tls.ClientHelloData(ctx, client_hello(sni))


def received(events) -> list[dict]:
    out = []
    try:
        while True:
            events.settimeout(0.2)
            out.append(json.loads(events.recv(65536)))
    except (socket.timeout, BlockingIOError):
        return out


def test_vendor_sni_is_cut_before_any_upstream_connection(guarded):
    addon, tctx, events = guarded
    data = hello_data(tctx, "mydjiflight.dji.com")
    addon.tls_clienthello(data)
    assert data.ignore_connection                         # passthrough: never intercepted
    hook = server_hooks.ServerConnectionHookData(server=data.context.server, client=data.context.client)
    addon.server_connect(hook)
    assert hook.server.error == "blocked by gcsguard (sni-list)"
    loaded, decided = received(events)
    assert loaded["type"] == "gate.policy_loaded"
    assert (decided["type"], decided["action"], decided["reason"], decided["name"], decided["vendor"]) == \
        ("tls.decision", "block", "sni-list", "mydjiflight.dji.com", "DJI")
    assert decided["device_ip"] == "10.70.0.23" and decided["details"]["sport"] == 40001
    assert decided["source"] == "gate"


def test_allowed_sni_passes_through_untouched(guarded):
    addon, tctx, _ = guarded
    data = hello_data(tctx, "www.allowed.example")
    addon.tls_clienthello(data)
    hook = server_hooks.ServerConnectionHookData(server=data.context.server, client=data.context.client)
    addon.server_connect(hook)
    assert data.ignore_connection and hook.server.error is None


def first_decision(tctx, data: bytes, address=("198.51.100.80", 443)) -> layer.NextLayer:
    """The next_layer hook of a new transparent connection that has sent `data` so far."""
    client = tflow.tclient_conn()
    client.peername = ("10.70.0.23", 40002)
    ctx = context.Context(client, tctx.options)
    ctx.server.address = address
    TransparentProxy(ctx)
    next_layer = layer.NextLayer(ctx)
    next_layer.events.append(DataReceived(client, data))
    return next_layer


def test_a_whole_clienthello_is_decided_at_the_first_layer_decision(guarded):
    """Relayed as plain TCP from the start (mitmproxy's ignore_hosts path), blocked or not."""
    addon, tctx, events_socket = guarded
    for sni, error in (("mydjiflight.dji.com", "blocked by gcsguard (sni-list)"), ("www.allowed.example", None)):
        data = first_decision(tctx, client_hello_bytes(sni))
        addon.next_layer(data)
        assert isinstance(data.layer, layers.TCPLayer) and data.layer.flow is None      # ignored
        hook = server_hooks.ServerConnectionHookData(server=data.context.server, client=data.context.client)
        addon.server_connect(hook)
        assert hook.server.error == error
    decided = [e for e in received(events_socket) if e["type"] == "tls.decision"]
    assert [(e["action"], e["reason"], e["details"]["sni"]) for e in decided] == \
        [("block", "sni-list", "mydjiflight.dji.com"), ("allow", "sni-allowed", "www.allowed.example")]


def test_what_is_not_a_clienthello_is_mitmproxys_choice(guarded):
    """Plain HTTP goes to mitmproxy's HTTP layer (requestheaders decides); a layer another
    addon chose stays."""
    addon, tctx, _ = guarded
    http_data = first_decision(tctx, b"GET / HTTP/1.1\r\n")
    addon.next_layer(http_data)
    assert isinstance(http_data.layer, layers.HttpLayer)
    assert http_data.context.client.id not in addon.decisions
    chosen = first_decision(tctx, client_hello_bytes("mydjiflight.dji.com"))
    chosen.layer = layers.TCPLayer(chosen.context)
    addon.next_layer(chosen)
    assert chosen.layer.flow is not None and chosen.context.client.id not in addon.decisions


def test_a_clienthello_in_pieces_is_decided_whole_or_refused_when_overdue(guarded):
    """However it is segmented (1 byte first, as DPI evasion does), no layer is chosen and
    nothing decided until the hello is whole; one that never completes is refused."""
    addon, tctx, events_socket = guarded
    hello = client_hello_bytes("mydjiflight.dji.com")
    for size in (1, 2, 5, 60):
        data = first_decision(tctx, hello[:size])
        addon.next_layer(data)
        assert data.layer is None and data.context.client.id not in addon.decisions, size
        assert data.context.client.id in addon.waiting
    addon.close_overdue(time.monotonic() + HELLO_DEADLINE)
    assert not addon.waiting and addon.blocked == 4
    whole = first_decision(tctx, hello)
    addon.next_layer(whole)
    assert addon.decisions[whole.context.client.id].reason == "sni-list"
    decided = [e for e in received(events_socket) if e["type"] == "tls.decision"]
    assert [e["reason"] for e in decided] == ["hello-incomplete"] * 4 + ["sni-list"]


def test_a_client_that_leaves_mid_hello_is_recorded(guarded):
    addon, tctx, events_socket = guarded
    data = first_decision(tctx, client_hello_bytes("www.allowed.example")[:3])
    addon.next_layer(data)
    addon.client_disconnected(data.context.client)
    decided = [e for e in received(events_socket) if e["type"] == "tls.decision"]
    assert [(e["action"], e["reason"]) for e in decided] == [("block", "hello-incomplete")]


def test_ech_never_hides_the_outer_sni(guarded):
    """Chrome's GREASE ECH extension: decided by the outer SNI all the same, and recorded."""
    addon, tctx, events_socket = guarded
    data = first_decision(tctx, with_extension(client_hello_bytes("mydjiflight.dji.com"), 0xFE0D, b"\x00"))
    addon.next_layer(data)
    decided = [e for e in received(events_socket) if e["type"] == "tls.decision"]
    assert [(e["reason"], e["details"]["ech"]) for e in decided] == [("sni-list", True)]


def test_plain_http_vendor_host_and_httpdns_get_403(guarded):
    addon, _, _ = guarded
    for host, path, status in (("api.dji.com", "/upload", 403), ("www.allowed.example", "/d?dn=x.example", 403),
                               ("www.allowed.example", "/", None)):
        flow = tflow.tflow()
        flow.request.host_header, flow.request.path = host, path
        flow.server_conn.address = ("198.51.100.80", 80)
        addon.requestheaders(flow)
        assert (flow.response.status_code if flow.response else None) == status
    assert b"blocked by gcsguard: host-list api.dji.com" in addon_response(addon, "api.dji.com")


def addon_response(addon, host):
    flow = tflow.tflow()
    flow.request.host_header = host
    flow.server_conn.address = ("198.51.100.80", 80)
    addon.requestheaders(flow)
    return flow.response.content


def test_eager_connection_strategy_is_forced_to_lazy(guarded):
    addon, tctx, _ = guarded
    tctx.options.add_option("connection_strategy", str, "eager", "declared by the proxy server")
    assert tctx.options.connection_strategy == "eager"                 # mitmproxy's default

    async def start():
        addon.running()
        addon._task.cancel()
    asyncio.run(start())
    assert tctx.options.connection_strategy == "lazy"


def test_the_daemon_down_never_stops_enforcement(guarded, tmp_path):
    addon, tctx, events = guarded
    events.close()
    (tmp_path / "events.sock").unlink()                   # the daemon is gone
    data = hello_data(tctx, "mydjiflight.dji.com")
    addon.tls_clienthello(data)
    hook = server_hooks.ServerConnectionHookData(server=data.context.server, client=data.context.client)
    addon.server_connect(hook)
    assert hook.server.error and addon.sender.unsent >= 1 and addon.blocked == 1


def test_a_bad_config_is_an_options_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[firewall]\nmode = 'open'\n")
    addon = EgressGuard()
    with taddons.context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError, match="mode"):
            tctx.configure(addon, gcsguard_config=str(bad))


def test_an_unconfigured_gate_refuses_everything():
    addon = EgressGuard()
    with taddons.context(addon) as tctx:
        data = hello_data(tctx, "www.allowed.example")
        addon.tls_clienthello(data)
        hook = server_hooks.ServerConnectionHookData(server=data.context.server, client=data.context.client)
        addon.server_connect(hook)
        assert hook.server.error == "blocked by gcsguard (no-policy)"


def test_mitmdump_loads_the_addon_file(tmp_path):
    """`mitmdump -s addons/egress_guard.py` as documented: loads, reads the config, forces lazy."""
    import os
    import subprocess
    import sys
    empty = tmp_path / "empty.flows"
    empty.write_bytes(b"")
    mitmdump = os.path.join(os.path.dirname(sys.executable), "mitmdump")
    addon_file = os.path.join(os.path.dirname(__file__), "..", "..", "addons", "egress_guard.py")
    run = subprocess.run([mitmdump, "-n", "-r", str(empty), "-s", addon_file, "--set",
                          f"gcsguard_config={config_file(tmp_path)}"], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "forcing lazy" in run.stdout and "Error" not in run.stdout
