"""Replacing a file so that a reader, or the next boot, sees the old version or the new one,
whole: written beside it, flushed to disk, renamed over it, and the rename itself made
durable. The gate trusts `applied-policy.json` only because of this."""
from __future__ import annotations

import os


def atomic_write(path: str, data: str | bytes, mode: int = 0o640) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
