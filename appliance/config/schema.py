"""The configuration: one frozen, typed dataclass per TOML section.

Every field has a default (the example file `gcsguard.example.toml` shows them all)
and may carry metadata: `check` (a function returning an error text or None),
`path` (resolved relative to the config file), `secret` (given only as
`<key>_file` or `<key>_env`, never inline). Later parts add their sections here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal


class Secret:
    """A secret value that never shows itself in repr, logs or exports."""

    __slots__ = ("_value", "origin")

    def __init__(self, value: str, origin: str) -> None:
        self._value, self.origin = value, origin

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(<redacted>, from {self.origin})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def positive(v: float) -> str | None:
    return None if v > 0 else "must be greater than 0"


def non_negative(v: float) -> str | None:
    return None if v >= 0 else "must be 0 or more"


def host_port(values: tuple[str, ...]) -> str | None:
    for v in values:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            return f"{v!r} is not host:port (IPv6 as [::1]:9253)"
    return None


def opt(default, *, check: Callable | None = None, path: bool = False, secret: bool = False,
        doc: str = ""):
    return field(default=default, metadata={"check": check, "path": path, "secret": secret,
                                            "doc": doc})


@dataclass(frozen=True)
class ApplianceSection:
    station: str = opt("gcsguard", doc="station name, carried in checkpoints and exports")
    state_dir: str = opt("/var/lib/gcsguard", path=True)


@dataclass(frozen=True)
class ListsSection:
    block: tuple[str, ...] = opt(("/etc/gcsguard/blocklists",), path=True,
                                 doc="list files, or directories of *.list/*.txt/*.hosts/*.ips")
    allow: tuple[str, ...] = opt((), path=True, doc="allowlist files: they beat the blocklists")
    max_bad_lines: int = opt(100, check=non_negative,
                             doc="a file with more bad lines is rejected as a whole")


@dataclass(frozen=True)
class LogSection:
    directory: str = opt("/var/log/gcsguard", path=True)
    signing_key_file: str = opt("/etc/gcsguard/keys/log-signing.key", path=True,
                                doc="Ed25519 private key (root-only); create with gcsguard keygen")
    max_file_bytes: int = opt(64 << 20, check=positive)
    fsync: Literal["always", "interval", "never"] = opt("interval")
    fsync_interval: float = opt(1.0, check=positive, doc="seconds, with fsync = interval")
    checkpoint_interval: float = opt(300.0, check=positive, doc="seconds between signed checkpoints")
    retention_days: int = opt(365, check=non_negative, doc="0 keeps everything")


@dataclass(frozen=True)
class EventsSection:
    queue_size: int = opt(65536, check=positive, doc="per sink; a full queue drops and counts")
    socket: str = opt("/run/gcsguard/events.sock", path=True,
                      doc="local datagram socket for events from other processes")
    drop_report_interval: float = opt(60.0, check=positive)


@dataclass(frozen=True)
class MetricsSection:
    listen: tuple[str, ...] = opt(("127.0.0.1:9253",), check=host_port,
                                  doc="management addresses only; [] disables the endpoint")
    basic_auth_user: str = opt("")
    basic_auth_password: Secret | None = opt(None, secret=True)


@dataclass(frozen=True)
class Config:
    appliance: ApplianceSection = ApplianceSection()
    lists: ListsSection = ListsSection()
    log: LogSection = LogSection()
    events: EventsSection = EventsSection()
    metrics: MetricsSection = MetricsSection()
    path: str = ""            # the file it came from
    sha256: str = ""          # of that file's bytes: which policy was in force


def cross_check(sections: dict) -> list[str]:
    """Rules that involve more than one key."""
    metrics = sections.get("metrics", MetricsSection())
    if bool(metrics.basic_auth_user) != bool(metrics.basic_auth_password):
        return ["[metrics] basic_auth_user and basic_auth_password_file/_env go together"]
    return []
