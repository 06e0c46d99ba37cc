"""Recording events from a command (firewall open, lists update, verify): through the
daemon's socket when it runs, else appended to the signed log directly (the writer's
lock keeps one writer per chain)."""
from __future__ import annotations

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
    return f"in {config.log.directory}"
