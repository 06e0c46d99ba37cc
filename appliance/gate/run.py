"""`gcsguard gate`: mitmproxy in transparent mode with the EgressGuard addon, its own process.

It listens on the port the ruleset redirects the LAN's TCP 80/443 to. Run it as the
configured uid (`[gate] uid`): the output chain applies the LAN's policy to that uid,
so the gate's own upstream connections cannot go where a controller may not.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal

from ..config import Config


async def serve(config: Config) -> None:
    from mitmproxy import options
    from mitmproxy.addons import core, disable_h2c, errorcheck, proxyserver, tlsconfig
    from mitmproxy.master import Master
    from mitmproxy.proxy import server

    # mitmproxy closes a connection idle this long (its default: 600 s); read per connection
    server.TCP_TIMEOUT = int(config.gate.idle_timeout)

    from .addon import EgressGuard
    os.makedirs(config.gate.confdir, mode=0o700, exist_ok=True)
    opts = options.Options(confdir=config.gate.confdir)       # only core options here
    # Only what a transparent passthrough gate uses: every hook visits every addon, and
    # mitmdump's thirty (playback, export, cookies, ...) cost a fifth of its CPU here.
    master = Master(opts, with_termlog=False)
    # no NextLayer addon: the guard makes every layer decision (see EgressGuard.next_layer)
    guard = EgressGuard()
    master.addons.add(core.Core(), proxyserver.Proxyserver(), guard,
                      tlsconfig.TlsConfig(), disable_h2c.DisableH2C(), errorcheck.ErrorCheck())
    opts.update(mode=["transparent"], listen_host="", listen_port=config.gate.listen_port,
                connection_strategy="lazy", gcsguard_config=config.path)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, master.shutdown)
    await master.run()


def main(config: Config) -> int:
    # mitmproxy logs every client and server connection at INFO: that is the log's job
    # (the gate's decisions are events), and at hundreds per second it costs the relay.
    logging.getLogger("mitmproxy.proxy.server").setLevel(logging.WARNING)
    # mitmproxy warns when its NextLayer addon is missing: here the guard is the layer decider
    logging.getLogger("mitmproxy.addons.proxyserver").addFilter(
        lambda record: "without nextlayer addon" not in record.getMessage())
    if os.geteuid() == 0:
        logging.getLogger("gcsguard.gate").warning(
            "running as root: run it as [gate] uid (%d) so the output chain applies the LAN's "
            "policy to its connections", config.gate.uid)
    # uvloop's libuv loop: with the stdlib loop the gate relayed 0.42x the direct rate of
    # new TLS connections, with uvloop 0.57x (docs/benchmarks.md)
    import uvloop
    uvloop.run(serve(config))
    return 0
