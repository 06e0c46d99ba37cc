"""Time stamps for events: wall clock, monotonic clock, boot id and clock-sync state.

A Raspberry Pi has no real-time clock: until NTP synchronizes it, the wall clock
may be years off, so every event says whether the kernel considered the clock
synchronized (adjtimex: TIME_ERROR means "not synchronized").
"""
from __future__ import annotations

import ctypes
import ctypes.util
import time
from datetime import datetime, timezone
from typing import Callable

from .event import Stamp

_TIME_ERROR = 5


def rfc3339(epoch: float, fraction: bool = True) -> str:
    """UTC, with microseconds unless `fraction` is False (for people, not for ordering)."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ" if fraction else "%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch; accepts the 'Z' form we write and any ISO offset."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def kernel_boot_id(path: str = "/proc/sys/kernel/random/boot_id") -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def kernel_clock_state() -> str:
    """'synced' or 'unsynced' from adjtimex(2) with modes=0 (read-only, unprivileged)."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return "unknown"
    buf = ctypes.create_string_buffer(512)   # struct timex is 208 bytes on 64-bit; modes=0 reads only
    state = ctypes.CDLL(libc_name, use_errno=True).adjtimex(buf)
    if state < 0:
        return "unknown"
    return "unsynced" if state == _TIME_ERROR else "synced"


class Clock:
    """Makes `Stamp`s. The sync state is re-read at most once a second (it changes rarely)."""

    def __init__(self, wall: Callable[[], float] = time.time,
                 mono_ns: Callable[[], int] = time.monotonic_ns,
                 boot_id: str | None = None,
                 clock_state: Callable[[], str] = kernel_clock_state) -> None:
        self._wall, self._mono_ns, self._clock_state = wall, mono_ns, clock_state
        self.boot_id = boot_id if boot_id is not None else kernel_boot_id()
        self._state, self._state_at = "unknown", -1 << 62
        self._second, self._prefix = -1, ""

    def stamp(self) -> Stamp:
        now_ns = self._mono_ns()
        if now_ns - self._state_at > 1_000_000_000:
            self._state, self._state_at = self._clock_state(), now_ns
        wall = self._wall()
        second = int(wall)
        if second != self._second:         # formatting is the costly part: once a second
            self._second, self._prefix = second, rfc3339(second)[:-8]
        text = f"{self._prefix}.{min(999_999, round((wall - second) * 1e6)):06d}Z"
        return Stamp(time=text, mono_ns=now_ns, boot_id=self.boot_id, clock=self._state)
