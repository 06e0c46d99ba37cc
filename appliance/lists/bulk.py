"""Finding the lines of a list that are bare, valid, lower-case names, without a Python loop.

Most large lists are one plain name per line. Checking each line in Python
costs more than the 2 s budget for 1,000,000 names, so the plain lines are found
with whole-text C-level searches (str.find, one regex over the rare odd
characters, map(len)), and only the other lines ("special": comments, hosts
lines, AdBlock rules, upper case, anything suspicious) go through the full
per-line parser. A line is plain when it uses only [a-z0-9_.-], does not start
or end with '.' or '-', has no empty label or label edge hyphen, and is at most
63 characters long (so no label can be too long); everything else is special.
"""
from __future__ import annotations

import re

_ODD_CHAR = re.compile(r"[^a-z0-9_.\-\n]")
_BAD_PAIRS = ("..", "-.", ".-", "-\n", ".\n", "\n.", "\n-")


def special_lines(text: str, lines: list[str]) -> set[int]:
    """0-based indexes of the lines of `text` (split on '\\n' into `lines`) that are not plain."""
    starts: list[int] = []
    for m in _ODD_CHAR.finditer(text):
        starts.append(m.start())
    for pair in _BAD_PAIRS:
        pos = text.find(pair)
        while pos >= 0:
            starts.append(pos if pair[0] != "\n" else pos + 1)
            pos = text.find(pair, pos + 1)
    special = set(_line_numbers(text, sorted(starts)))
    if lines and lines[0][:1] in (".", "-"):
        special.add(0)
    if lines and lines[-1][-1:] in (".", "-"):
        special.add(len(lines) - 1)
    if max(map(len, lines), default=0) > 63:
        special.update(i for i, line in enumerate(lines) if len(line) > 63)
    return special


def _line_numbers(text: str, positions: list[int]) -> list[int]:
    """Line index of each (sorted) position, counting newlines incrementally."""
    out, line, last = [], 0, 0
    for pos in positions:
        line += text.count("\n", last, pos)
        last = pos
        out.append(line)
    return out
