"""What a log records of its own holes, gathered as a verifier reads it: the times no daemon
was recording (gaps) and the records it says it lost (losses). An auditor is told of each."""
from __future__ import annotations

from dataclasses import dataclass, field

LOSS_TYPES = ("log.loss", "log.rejected", "log.torn_tail", "events.dropped", "sink.failed")


@dataclass
class Holes:
    gaps: list[str] = field(default_factory=list)
    losses: list[str] = field(default_factory=list)
    stopped: str = ""           # the time of an appliance.stopped no start has followed yet

    def wants(self, kind: str) -> bool:
        return kind in LOSS_TYPES or kind.startswith("appliance.")

    def see(self, kind: str, record: dict, where: str) -> None:
        d, t = record.get("details") or {}, record.get("time", "")
        if kind == "appliance.stopped":
            self.stopped = t
        elif kind == "appliance.started":
            if self.stopped:
                self.gaps.append(f"{self.stopped} to {t}: the appliance was stopped")
            self.stopped = ""
        elif kind == "appliance.unclean_stop":
            self.gaps.append(f"{d.get('last_time', '?')} to {t}: the appliance ended uncleanly "
                             f"after record {d.get('last_n', '?')} ({where})")
        elif kind in LOSS_TYPES:
            self.losses.append(f"{where}: {_loss(kind, record, d, t)}")


def _loss(kind: str, record: dict, d: dict, t: str) -> str:
    if kind == "log.loss":
        return (f"{d.get('records_lost')} records lost between {d.get('first_time')} and "
                f"{d.get('last_time')} (writes failed)")
    if kind == "events.dropped":
        return f"events dropped before the sinks at {t}: {d.get('dropped_by_sink')}"
    if kind == "log.rejected":
        return (f"a {d.get('type')!r} record from {d.get('source')!r} could not be encoded "
                f"(sha256 {d.get('sha256', '')[:16]}…)")
    if kind == "log.torn_tail":
        return f"a torn write of {d.get('bytes')} bytes in {d.get('file')} (crash or power loss)"
    return f"the {record.get('reason')} sink failed at {t}: {d.get('events')} events not handled"
