"""The alert sink in the running appliance: events in, notifications out, never blocking."""
from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry

from ..config import Config
from ..events.bus import EventBus
from .notify import Alertmanager, Dispatcher, Syslog, Webhook
from .rules import AlertEngine, Notification, Rule

TICK = 2.0          # seconds between checks for alerts to resolve


class AlertService:
    def __init__(self, config: Config, rules: tuple[Rule, ...], bus: EventBus,
                 registry: CollectorRegistry) -> None:
        a, station = config.alerts, config.appliance.station
        self.bus = bus
        self.engine = AlertEngine(list(rules))         # loaded and checked with the policy
        notifiers = ([Alertmanager(a.alertmanager_url, station)] if a.alertmanager_url else []) + (
            [Webhook(a.webhook_url, a.webhook_secret, station)] if a.webhook_url else []) + (
            [Syslog(a.syslog, station)] if a.syslog else [])
        self.dispatcher = Dispatcher(notifiers, registry, self._failed, a.queue_size)
        bus.add_sink("alerts", self, config.events.queue_size)

    def tasks(self) -> list[asyncio.Task]:
        return [asyncio.create_task(self._resolve(), name="alert-resolve"),
                asyncio.create_task(self.dispatcher.run(), name="notifiers")]

    async def handle(self, events) -> None:
        for event in events:
            if not event.type.startswith("alert."):        # our own records never feed back
                for n in self.engine.observe(event, time.time()):
                    self._dispatch(n)

    async def close(self) -> None:
        pass

    async def _resolve(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            for n in self.engine.tick(time.time()):
                self._dispatch(n)

    def _dispatch(self, n: Notification) -> None:
        self.bus.emit(f"alert.{n.status}", action="error" if n.status == "firing" else "info",
                      reason=n.rule.name, details={"group": n.group, "count": n.count,
                                                   "severity": n.rule.severity, "summary": n.summary})
        self.dispatcher.submit(n)

    def _failed(self, notifier: str, n: Notification, error: str) -> None:
        self.bus.emit("alert.notify_failed", action="error", reason=notifier,
                      details={"alert": n.rule.name, "status": n.status, "error": error[:500]})
