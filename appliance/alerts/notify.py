"""Notifiers: Alertmanager (API v2, resolving), a JSON webhook (HMAC-signed), syslog (RFC 5424).

Each notifier has its own bounded queue and worker: a slow or dead receiver delays only
itself, never the event pipeline. Failed sends are retried with backoff, then dropped;
both are counted and recorded.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
import urllib.request
from typing import Callable

from prometheus_client import CollectorRegistry, Counter

from ..config.endpoint import Endpoint
from ..config.schema import Secret
from ..events.clock import rfc3339
from .rules import Notification

BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)          # seconds before each retry
SEVERITY = {"critical": 2, "error": 3, "warning": 4, "info": 6}


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float = 5.0) -> None:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if response.status >= 300:
            raise OSError(f"HTTP {response.status}")


class Alertmanager:
    name = "alertmanager"

    def __init__(self, url: str, station: str) -> None:
        self.url, self.station = url.rstrip("/") + "/api/v2/alerts", station

    def send(self, n: Notification) -> None:
        alert = {"labels": {"alertname": n.rule.name, "severity": n.rule.severity,
                            "station": self.station, **n.group},
                 "annotations": {"summary": n.summary or n.rule.name, "count": str(n.count)},
                 "startsAt": rfc3339(n.starts_at)}
        if n.ends_at is not None:            # resolved: Alertmanager closes it at endsAt
            alert["endsAt"] = rfc3339(n.ends_at)
        _post(self.url, json.dumps([alert]).encode(), {})


class Webhook:
    name = "webhook"

    def __init__(self, url: str, secret: Secret | None, station: str) -> None:
        self.url, self.secret, self.station = url, secret, station

    def send(self, n: Notification) -> None:
        body = json.dumps({"alert": n.rule.name, "status": n.status, "severity": n.rule.severity,
                           "station": self.station, "group": n.group, "count": n.count,
                           "summary": n.summary, "starts_at": rfc3339(n.starts_at),
                           "ends_at": rfc3339(n.ends_at) if n.ends_at else None},
                          sort_keys=True).encode()
        headers = {}
        if self.secret is not None:
            digest = hmac.new(self.secret.reveal().encode(), body, hashlib.sha256).hexdigest()
            headers["X-Gcsguard-Signature"] = f"sha256={digest}"
        _post(self.url, body, headers)


class Syslog:
    name = "syslog"

    def __init__(self, address: str, station: str) -> None:
        self.address, self.station = tuple(Endpoint.parse(address)), station

    def send(self, n: Notification) -> None:
        pri = 16 * 8 + SEVERITY.get(n.rule.severity, 4)          # local0
        data = " ".join(f'{k}="{_sd(v)}"' for k, v in {"alert": n.rule.name, "status": n.status,
                                                        "count": n.count, **n.group}.items())
        message = (f"<{pri}>1 {rfc3339(time.time())} {self.station} gcsguard - ALERT "
                   f"[gcsguard@32473 {data}] {n.summary or n.rule.name}")
        family = socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.sendto(message.encode()[:2048], self.address)


def _sd(value) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


class Dispatcher:
    def __init__(self, notifiers: list, registry: CollectorRegistry, on_failure: Callable,
                 queue_size: int = 1000, backoff: tuple[float, ...] = BACKOFF) -> None:
        self.notifiers, self.on_failure, self.backoff = notifiers, on_failure, backoff
        self.total = Counter("gcsguard_alert_notifications_total", "Alert notifications by "
                             "notifier and result (sent, failed: retried, dropped: given up)",
                             ["notifier", "result"], registry=registry)
        for notifier in notifiers:
            for result in ("sent", "failed", "dropped"):
                self.total.labels(notifier.name, result)
        self.queues = {n.name: asyncio.Queue(queue_size) for n in notifiers}

    def submit(self, n: Notification) -> None:
        for notifier in self.notifiers:
            try:
                self.queues[notifier.name].put_nowait(n)
            except asyncio.QueueFull:
                self.total.labels(notifier.name, "dropped").inc()

    async def run(self) -> None:
        await asyncio.gather(*(self._worker(n) for n in self.notifiers))

    async def _worker(self, notifier) -> None:
        queue = self.queues[notifier.name]
        while True:
            n = await queue.get()
            for attempt, delay in enumerate((*self.backoff, None)):
                try:
                    await asyncio.to_thread(notifier.send, n)
                    self.total.labels(notifier.name, "sent").inc()
                    break
                except OSError as e:
                    self.total.labels(notifier.name, "failed").inc()
                    if delay is None:
                        self.total.labels(notifier.name, "dropped").inc()
                        self.on_failure(notifier.name, n, str(e))
                        break
                    await asyncio.sleep(delay)
