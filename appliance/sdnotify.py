"""systemd integration: the notify protocol (READY=1 when serving, WATCHDOG=1 while
healthy) and credentials (secrets systemd hands to the service, readable by it alone).

A datagram to $NOTIFY_SOCKET; nothing happens outside systemd. The watchdog is fed from
the event loop itself, so a blocked loop stops feeding it and systemd restarts the daemon
(the ruleset stays in force meanwhile).
"""
from __future__ import annotations

import asyncio
import os
import socket


def notify(message: str, environ=os.environ) -> bool:
    path = environ.get("NOTIFY_SOCKET", "")
    if not path:
        return False
    if path.startswith("@"):                       # abstract namespace
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(message.encode(), path)
        except OSError:
            return False
    return True


def watchdog_interval(environ=os.environ) -> float | None:
    """Half of WatchdogSec (systemd's advice), or None when no watchdog is asked for."""
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6


async def feed_watchdog(interval: float) -> None:
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)


def credential(name: str, environ=os.environ) -> str | None:
    """$CREDENTIALS_DIRECTORY/NAME if systemd passed it (LoadCredential=), else None."""
    directory = environ.get("CREDENTIALS_DIRECTORY", "")
    path = os.path.join(directory, name) if directory else ""
    return path if path and os.path.isfile(path) else None
