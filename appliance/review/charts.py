"""The report's charts, drawn with matplotlib as inline SVG (the page stays one file)."""
from __future__ import annotations

import io
from collections import Counter

import matplotlib

matplotlib.use("Agg")                      # no display: files only
import matplotlib.pyplot as plt           # noqa: E402  (after the backend is chosen)

BLOCKED, LET_THROUGH = "#2e7d32", "#c62828"
LAYER_COLORS = {"dns": "#1565c0", "ip": "#6a1b9a", "tls": "#00838f", "http": "#ef6c00", "tcp": "#5d4037"}


def _svg(fig) -> str:
    out = io.StringIO()
    fig.savefig(out, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = out.getvalue()
    return text[text.index("<svg"):]        # drop the XML prolog: it is inlined in HTML


def by_vendor(attempts: Counter) -> str:
    """Blocked attempts per vendor, stacked by the layer that stopped them."""
    vendors = sorted({k[0] for k in attempts}, key=lambda v: -sum(
        n for k, n in attempts.items() if k[0] == v))[:15]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(vendors) + 1.2))
    left = [0] * len(vendors)
    for layer, color in LAYER_COLORS.items():
        counts = [sum(n for k, n in attempts.items() if k[0] == v and k[1] == layer) for v in vendors]
        if any(counts):
            ax.barh(vendors, counts, left=left, color=color, label=layer)
            left = [a + b for a, b in zip(left, counts)]
    ax.invert_yaxis()
    ax.set_xlabel("attempts")
    ax.set_title("Attempts by vendor and layer")
    ax.legend(loc="lower right")
    return _svg(fig)


def over_time(hourly: Counter) -> str:
    """Attempts per hour: blocked, and let through (audit mode)."""
    hours = sorted({h for h, _ in hourly})
    fig, ax = plt.subplots(figsize=(8, 3))
    blocked = [hourly[(h, "blocked")] for h in hours]
    let = [hourly[(h, "let through")] for h in hours]
    ax.bar(range(len(hours)), blocked, color=BLOCKED, label="blocked")
    ax.bar(range(len(hours)), let, bottom=blocked, color=LET_THROUGH, label="let through")
    step = max(1, len(hours) // 8)
    ax.set_xticks(range(0, len(hours), step), [h[5:].replace("T", " ") + "h" for h in hours[::step]])
    ax.set_ylabel("attempts per hour")
    ax.set_title("Attempts over time (UTC)")
    ax.legend()
    return _svg(fig)


def by_device(devices: dict) -> str:
    names = sorted(devices, key=lambda d: -(devices[d]["blocked"] + devices[d]["let_through"]))[:15]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.2))
    blocked = [devices[d]["blocked"] for d in names]
    ax.barh(names, blocked, color=BLOCKED, label="blocked")
    ax.barh(names, [devices[d]["let_through"] for d in names], left=blocked, color=LET_THROUGH,
            label="let through")
    ax.invert_yaxis()
    ax.set_xlabel("attempts")
    ax.set_title("Attempts by device")
    ax.legend(loc="lower right")
    return _svg(fig)
