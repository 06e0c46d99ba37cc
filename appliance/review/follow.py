"""`gcsguard review show --follow`: the log as it is written, for on-call.

Reads complete lines only (a record the daemon is still appending waits for its newline),
and follows the chain across rotations: when a newer file appears, the current one is
read to its end first, so no record is skipped. A file removed by retention is left for
the newest. Polling, not inotify: it works the same on a copy over NFS or sshfs.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterator

import orjson

from ..evlog import chain


def follow(directory: str, from_start: bool = False, poll: float = 0.5,
           stop: Callable[[], bool] = lambda: False) -> Iterator[dict[str, Any]]:
    """Records appended from now on (every record from the first file with `from_start`)."""
    files = chain.log_files(directory)
    current = files[0 if from_start else -1] if files else ""
    offset = 0 if from_start or not current else _size(directory, current)
    pending = b""
    while not stop():
        got = False
        if current:
            data = _read(directory, current, offset)
            if data:
                got = True
                offset += len(data)
                lines = (pending + data).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    try:
                        yield orjson.loads(line)
                    except ValueError:
                        continue
        if got:
            continue
        newer = [name for name in chain.log_files(directory) if _order(name) > _order(current)]
        if newer and (not current or _size(directory, current) <= offset):
            current, offset, pending = newer[0], 0, b""     # rotated: the old file was read out
            continue
        time.sleep(poll)


def _order(name: str) -> tuple[str, int]:
    m = chain.FILE_RE.match(name)
    return (m.group(1), int(m.group(2))) if m else ("", -1)


def _size(directory: str, name: str) -> int:
    try:
        return os.path.getsize(os.path.join(directory, name))
    except FileNotFoundError:
        return 0


def _read(directory: str, name: str, offset: int) -> bytes:
    try:
        with open(os.path.join(directory, name), "rb") as f:
            f.seek(offset)
            return f.read(1 << 20)
    except FileNotFoundError:          # pruned under us: the newest file takes over
        return b""
