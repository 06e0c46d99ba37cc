"""The DNS wire format, by hand, for the hot paths (RFC 1035, 6891).

dnslib's parse and encode cost ~40-120 µs a message; answering a blocked name or a
cache hit needs only the header, the question and the TTL positions, which this
module reads in a few µs. Anything unusual (several questions, odd opcodes, bad
compression) raises `WireError` and goes to the dnslib path instead.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

QR, AA, TC, RD, RA, AD, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0020, 0x0010
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
A, NS, CNAME, SOA, MX, TXT, AAAA, OPT, SVCB, HTTPS, ANY = 1, 2, 5, 6, 15, 16, 28, 41, 64, 65, 255
DO_BIT = 0x8000                      # in the OPT record's TTL field
HEADER = struct.Struct("!HHHHHH")
RR_FIXED = struct.Struct("!HHIH")    # type, class, ttl, rdlength


class WireError(ValueError):
    pass


@dataclass(slots=True)
class Query:
    id: int
    flags: int
    name: str               # lower case, no trailing dot ("" for the root)
    qtype: int
    qclass: int
    question: bytes         # the question section exactly as asked (0x20 case kept)
    edns: bool              # the query carried an OPT record
    udp_size: int           # client's UDP payload limit (512 without EDNS)
    do: bool                # DNSSEC OK
    raw: bytes
    via_dnslib: bool = False   # parsed by the slow path: answered with the dnslib builders


def read_name(msg: bytes, offset: int) -> tuple[str, int]:
    """(lower-case name without trailing dot, offset after the name), following pointers."""
    labels, end, jumps, length = [], -1, 0, 0
    while True:
        if offset >= len(msg):
            raise WireError("name runs past the message")
        n = msg[offset]
        if n == 0:
            offset += 1
            break
        if n & 0xC0 == 0xC0:
            if offset + 1 >= len(msg):
                raise WireError("truncated compression pointer")
            jumps += 1
            if jumps > 64:
                raise WireError("compression loop")
            if end < 0:
                end = offset + 2
            offset = ((n & 0x3F) << 8) | msg[offset + 1]
            continue
        if n & 0xC0:
            raise WireError("unknown label type")
        label = msg[offset + 1:offset + 1 + n]
        if len(label) != n:
            raise WireError("label runs past the message")
        length += n + 1
        if length > 255:
            raise WireError("name longer than 255 octets")
        labels.append(label)
        offset += n + 1
    try:
        name = b".".join(labels).decode("ascii").lower()
    except UnicodeDecodeError:
        raise WireError("non-ASCII label") from None
    return name, (end if end >= 0 else offset)


def parse_query(msg: bytes) -> Query:
    """A standard query with one question and at most an OPT in additional; else WireError."""
    if len(msg) < 12:
        raise WireError("shorter than a header")
    qid, flags, qd, an, ns, ar = HEADER.unpack_from(msg)
    if flags & QR or (flags >> 11) & 0xF != 0 or qd != 1 or an or ns or ar > 1:
        raise WireError("not a plain standard query")
    name, offset = _question_name(msg)
    if offset + 4 > len(msg):
        raise WireError("question runs past the message")
    qtype, qclass = struct.unpack_from("!HH", msg, offset)
    offset += 4
    edns, udp_size, do = False, 512, False
    if ar:
        if msg[offset:offset + 3] != b"\x00\x00\x29" or offset + 11 > len(msg):
            raise WireError("additional record is not an OPT")
        size, _, _, ttl_flags, rdlen = struct.unpack_from("!HBBHH", msg, offset + 3)
        if offset + 11 + rdlen != len(msg):
            raise WireError("OPT length mismatch")
        edns, udp_size, do = True, max(512, size), bool(ttl_flags & DO_BIT)
    elif offset != len(msg):
        raise WireError("trailing bytes")
    return Query(qid, flags, name, qtype, qclass, msg[12:offset], edns, udp_size, do, msg)


def _question_name(msg: bytes) -> tuple[str, int]:
    """(lower-case name, offset after it) of the question at offset 12, in one walk.

    Each length byte after the first becomes a dot; a name with a dot or a
    non-ASCII byte inside a label goes to the dnslib path instead."""
    labels, offset = [], 12
    while True:
        if offset >= len(msg):
            raise WireError("question runs past the message")
        n = msg[offset]
        if n & 0xC0:
            raise WireError("compressed question")
        if n == 0:
            break
        labels.append(msg[offset + 1:offset + 1 + n])
        offset += n + 1
    if offset - 12 > 254:
        raise WireError("name longer than 255 octets")
    text = b".".join(labels)
    if text.count(b".") != max(0, len(labels) - 1):
        raise WireError("dot inside a label")
    try:
        return text.decode("ascii").lower(), offset + 1
    except UnicodeDecodeError:
        raise WireError("non-ASCII label") from None


@dataclass(slots=True)
class Record:
    section: int            # 0 answer, 1 authority, 2 additional
    name: str
    rtype: int
    rclass: int
    ttl: int
    ttl_offset: int
    rdata_offset: int
    rdlength: int


def records(msg: bytes) -> tuple[int, int, list[Record]]:
    """(flags, offset after the question, every RR) of a response; WireError if malformed."""
    if len(msg) < 12:
        raise WireError("shorter than a header")
    _, flags, qd, an, ns, ar = HEADER.unpack_from(msg)
    offset = 12
    for _ in range(qd):
        _, offset = read_name(msg, offset)
        offset += 4
    question_end = offset
    out = []
    for section, count in enumerate((an, ns, ar)):
        for _ in range(count):
            name, offset = read_name(msg, offset)
            if offset + 10 > len(msg):
                raise WireError("record runs past the message")
            rtype, rclass, ttl, rdlen = RR_FIXED.unpack_from(msg, offset)
            rdata = offset + 10
            if rdata + rdlen > len(msg):
                raise WireError("rdata runs past the message")
            out.append(Record(section, name, rtype, rclass, ttl, offset + 4, rdata, rdlen))
            offset = rdata + rdlen
    if offset > len(msg) or question_end > len(msg):
        raise WireError("message runs short")
    return flags, question_end, out


def opt_record(udp_size: int, do: bool, rcode_high: int = 0) -> bytes:
    return b"\x00\x00\x29" + struct.pack("!HBBHH", udp_size, rcode_high, 0, DO_BIT if do else 0, 0)
