"""Recording events from a command (firewall open, lists update, verify): through the
daemon's socket when it runs, else appended to the signed log directly (the writer's
lock keeps one writer per chain)."""
from __future__ import annotations

import os
from typing import Sequence

from ..config import Config
from ..events.event import Event
from ..events.socket import EventSender


def record(config: Config, events: Sequence[Event]) -> str:
    """Where the events went: 'by the daemon' or 'in <log directory>'."""
    sender = EventSender(config.events.socket, timeout=5.0)   # a command can wait
    try:
        pending = [e for e in events if not sender.send(e)]
    finally:
        sender.close()
    if not pending:
        return "by the daemon"
    from prometheus_client import CollectorRegistry
    from ..events.clock import Clock
    from . import signing
    from .writer import LogMetrics, LogWriter
    writer = LogWriter(config.log.directory, signing.load_private(config.log.signing_key_file),
                       config.appliance.station, Clock(), LogMetrics(CollectorRegistry()))
    try:
        writer.open()
    except OSError as e:
        raise OSError(f"{len(pending)} events neither reached the daemon nor the log: {e}") from None
    try:
        writer.write(pending)
    finally:
        writer.close()
        _give_back(config.log.directory)
    return f"in {config.log.directory}"


def _give_back(directory: str) -> None:
    """Files a root command created in the log directory go to the directory's owner (the
    daemon's user): else the daemon could not append to them once it runs again."""
    owner = os.stat(directory)
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        st = os.lstat(path)
        if os.path.isfile(path) and (st.st_uid, st.st_gid) != (owner.st_uid, owner.st_gid):
            os.chown(path, owner.st_uid, owner.st_gid)
