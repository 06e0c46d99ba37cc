"""Is the gate there? A listening TCP socket on its port, owned by its uid, read from
/proc/net/tcp and tcp6 at scrape time: no connection is made, so the gate records nothing
and sees nothing. (A gate that listens but hangs shows as not following the policy.)"""
from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LISTEN = "0A"
TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


def listening(text: str, port: int, uid: int) -> bool:
    """Whether a /proc/net/tcp table holds a listening socket on `port` owned by `uid`."""
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8 or fields[3] != LISTEN:
            continue
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and int(fields[7]) == uid:
            return True
    return False


class GateListening(Collector):
    def __init__(self, port: int, uid: int, tables: tuple[str, ...] = TABLES) -> None:
        self.port, self.uid, self.tables = port, uid, tables

    def collect(self):
        up = False
        for path in self.tables:
            try:
                with open(path) as f:
                    up = up or listening(f.read(), self.port, self.uid)
            except OSError:
                continue
        family = GaugeMetricFamily("gcsguard_gate_listening", "1 while the gate listens on its port "
                                   "as its own user; 0: it is not running, and what it gates is refused")
        family.add_metric([], 1.0 if up else 0.0)
        yield family
