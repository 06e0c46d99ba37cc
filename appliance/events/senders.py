"""The local event socket as a trust boundary: who may send what, and what a record may hold.

A datagram is taken only from a known sender (identified by the kernel, SO_PEERCRED /
SCM_CREDENTIALS: its uid), only with an event type that sender emits, and only when it
passes the event schema: bounded strings, bounded nesting, valid text, known actions,
reasons, vendors and categories. The daemon then stamps it (time, seq) and names its
source itself: nothing a sender claims about when, or as whom, is trusted. Pure: the
socket (socket.py) feeds it bytes and a uid.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable, Mapping, NamedTuple

from .event import ACTIONS

# What each sender may emit: event type -> the source the daemon records for it.
GATE = {"tls.decision": "gate", "http.decision": "gate", "tcp.decision": "gate",
        "gate.policy_loaded": "gate", "gate.reload_failed": "gate", "gate.client_capped": "gate"}
COMMANDS = {"verify.check": "verify", "verify.run": "verify",          # gcsguard verify
            "lists.updated": "cli", "firewall.opened": "cli",          # lists update, firewall open
            "dhcp.lease": "dhcp"}                                      # dnsmasq's lease script
# Why a datagram was refused: the label values of gcsguard_socket_events_rejected_total.
REJECTIONS = ("json", "schema", "size", "depth", "text", "sender", "type", "vocabulary")
MAX_DATAGRAM = 64 * 1024

MAX_TEXT = 255             # a top-level string (a name is at most 253)
MAX_DETAIL_TEXT = 2048
MAX_DEPTH = 6
MAX_ITEMS = 512            # values in details, all levels
_CODE = re.compile(r"[a-z0-9][a-z0-9._:-]{0,63}")      # reasons
_TOP = ("reason", "device_ip", "name", "vendor", "category")


class Rejected(Exception):
    def __init__(self, reason: str, why: str) -> None:
        super().__init__(why)
        self.reason = reason


class Vocabulary(NamedTuple):
    vendors: Callable[[], set[str]]       # the loaded lists' vendors and categories: the gate
    categories: Callable[[], set[str]]    # names them from the same lists


def check(data: bytes, allowed: Mapping[str, str], vocabulary: Vocabulary) -> tuple[dict, str]:
    """(the checked fields, the source to record), or Rejected(reason) saying why not."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as e:           # a JSON nesting bomb is a RecursionError
        raise Rejected("depth" if isinstance(e, RecursionError) else "json", str(e)[:200]) from None
    if not isinstance(doc, dict):
        raise Rejected("schema", "a datagram holds one JSON object")
    kind = doc.get("type")
    if not isinstance(kind, str) or kind not in allowed:
        raise Rejected("type", f"type {str(kind)[:64]!r} is not this sender's")
    if doc.get("action") not in ACTIONS:
        raise Rejected("schema", "action is not one of the known actions")
    fields = {"type": kind, "action": doc["action"]}
    for key in _TOP:
        value = doc.get(key, "")
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise Rejected("schema", f"{key} must be a string of at most {MAX_TEXT}")
        _text(value)
        if value:
            fields[key] = value
    if fields.get("reason") and not _CODE.fullmatch(fields["reason"]):
        raise Rejected("vocabulary", "reason is not a short code")
    details = doc.get("details", {})
    if not isinstance(details, dict):
        raise Rejected("schema", "details must be an object")
    _walk(details, 0, [0])
    # A vendor or category the loaded lists do not know never becomes a metric label; the
    # record is kept (a list reload can race a gate decision) with the claim in its details.
    for key, known in (("vendor", vocabulary.vendors), ("category", vocabulary.categories)):
        if fields.get(key) and fields[key] not in known():
            details = {**details, f"claimed_{key}": fields.pop(key)}
    fields["details"] = details
    return fields, allowed[kind]


def _walk(value: Any, depth: int, count: list[int]) -> None:
    count[0] += 1
    if depth > MAX_DEPTH:
        raise Rejected("depth", f"details nested deeper than {MAX_DEPTH}")
    if count[0] > MAX_ITEMS:
        raise Rejected("size", f"details hold more than {MAX_ITEMS} values")
    if isinstance(value, str):
        if len(value) > MAX_DETAIL_TEXT:
            raise Rejected("size", f"a detail string is longer than {MAX_DETAIL_TEXT}")
        _text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(key, depth + 1, count)
            _walk(item, depth + 1, count)
    elif isinstance(value, list):
        for item in value:
            _walk(item, depth + 1, count)
    elif value is not None and not isinstance(value, (int, float, bool)):
        raise Rejected("schema", "details hold only JSON values")


def _text(value: str) -> None:
    """Valid text: encodable (no lone surrogates) and no control characters but tab."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Rejected("text", "a string is not valid Unicode text") from None
    if any(ord(c) < 0x20 and c != "\t" for c in value):
        raise Rejected("text", "a string holds control characters")
