"""Progress bars for the long review commands, on a terminal only (tqdm).

A command reading a large log shows how far it is on stderr; piped or in a script it
prints nothing extra, so its output stays what the caller parses."""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Callable, Iterator


def log_size(directory: str, names: list[str] | None = None) -> int:
    """Bytes of a log directory's chain files (or of `names` in it), for a bar's total."""
    if names is None:
        from ..evlog.chain import log_files
        names = log_files(directory)
    paths = [os.path.join(directory, n) for n in names]
    return sum(os.path.getsize(p) for p in paths if os.path.exists(p))


@contextmanager
def bar(total: int, what: str, unit: str = "B") -> Iterator[Callable[[int], object]]:
    """`update(n)`: n more units done of `total`."""
    if not sys.stderr.isatty():
        yield lambda n: None
        return
    from tqdm import tqdm
    with tqdm(total=total, desc=what, unit=unit, unit_scale=True, unit_divisor=1024,
              file=sys.stderr, leave=False) as progress:
        yield progress.update
