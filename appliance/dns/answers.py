"""Building responses: by hand for the hot paths, with dnslib for everything else.

Both builders exist for each kind of answer and must agree byte for byte; a
property test (tests/dns/test_answers.py) generates queries and checks it. What a
careful resolver preserves is preserved here: the query ID, the question exactly
as asked (0x20 mixed case), RD and CD, EDNS with the DO bit, aged TTLs.
"""
from __future__ import annotations

import struct

import dnslib

from . import wire
from .cache import Entry

EDNS_SIZE = 1232            # our advertised UDP payload size (DNS flag day 2020)
_SOA_RDATA = (b"\x08gcsguard\x07invalid\x00" + b"\x07blocked\x08gcsguard\x07invalid\x00"
              + struct.pack("!IIIII", 1, 3600, 600, 86400, 0))   # minimum patched per answer


def reply_flags(query_flags: int, rcode: int, ad: bool = False) -> int:
    return wire.QR | wire.RA | (query_flags & (wire.RD | wire.CD)) | (wire.AD if ad else 0) | rcode


def _finish(q: wire.Query, flags: int, counts: tuple[int, int, int], body: bytes) -> bytes:
    an, ns, ar = counts
    opt = wire.opt_record(EDNS_SIZE, q.do) if q.edns else b""
    return wire.HEADER.pack(q.id, flags, 1, an, ns, ar + (1 if q.edns else 0)) + q.question + body + opt


# -- the fast builders -------------------------------------------------------------------
def sinkhole(q: wire.Query, mode: str, ttl: int) -> bytes:
    """NXDOMAIN, NODATA, or the null address for A/AAAA (NODATA for other types)."""
    if mode == "null" and q.qtype in (wire.A, wire.AAAA):
        rdata = bytes(4 if q.qtype == wire.A else 16)
        record = b"\xc0\x0c" + wire.RR_FIXED.pack(q.qtype, 1, ttl, len(rdata)) + rdata
        return _finish(q, reply_flags(q.flags, wire.NOERROR), (1, 0, 0), record)
    rcode = wire.NXDOMAIN if mode == "nxdomain" else wire.NOERROR
    soa = _SOA_RDATA[:-4] + struct.pack("!I", ttl)
    record = b"\xc0\x0c" + wire.RR_FIXED.pack(wire.SOA, 1, ttl, len(soa)) + soa
    return _finish(q, reply_flags(q.flags, rcode), (0, 1, 0), record)


def _ad(q: wire.Query, entry: Entry) -> bool:
    """Pass the upstream's AD bit only to a client that asked for it (RFC 6840 5.8)."""
    return bool(entry.flags & wire.AD) and (q.do or bool(q.flags & wire.AD))


def from_cache(q: wire.Query, entry: Entry, now: float, stale_ttl: int | None = None) -> bytes:
    flags = reply_flags(q.flags, entry.flags & 0xF, _ad(q, entry))
    return _finish(q, flags, entry.counts, entry.aged_body(now, stale_ttl))


def error(q: wire.Query, rcode: int) -> bytes:
    return _finish(q, reply_flags(q.flags, rcode), (0, 0, 0), b"")


def truncated(q: wire.Query) -> bytes:
    """Header and question with TC set: the client retries over TCP."""
    return _finish(q, reply_flags(q.flags, wire.NOERROR) | wire.TC, (0, 0, 0), b"")


def header_only(msg: bytes, rcode: int) -> bytes | None:
    """FORMERR/NOTIMP for a message whose header is readable, else None."""
    if len(msg) < 12:
        return None
    qid, flags = struct.unpack_from("!HH", msg)
    return wire.HEADER.pack(qid, wire.QR | (flags & 0x7900) | rcode, 0, 0, 0, 0)


def fit(q: wire.Query, response: bytes, tcp: bool) -> bytes:
    """The response, or a TC answer when it exceeds the client's UDP limit."""
    if tcp or len(response) <= min(q.udp_size, EDNS_SIZE if q.edns else 512):
        return response
    return truncated(q)


# -- the dnslib builders (the slow path, and the reference the fast path is tested against) --
def query_from_dnslib(record: dnslib.DNSRecord, raw: bytes) -> wire.Query:
    """The same `Query` the fast parser makes, for a message only dnslib could read."""
    if record.header.qr or record.header.opcode != 0 or len(record.questions) != 1:
        raise wire.WireError("not a plain standard query")
    q = record.questions[0]
    opt = next((r for r in record.ar if r.rtype == wire.OPT), None)
    question = dnslib.DNSBuffer()
    q.pack(question)
    return wire.Query(record.header.id, (record.header.bitmap & 0xFFF0) | record.header.rcode,
                      str(q.qname).rstrip(".").lower(), q.qtype, q.qclass, bytes(question.data),
                      opt is not None, max(512, opt.rclass) if opt else 512,
                      bool(opt and opt.ttl & wire.DO_BIT), raw, via_dnslib=True)


def _dnslib_reply(q: wire.Query, flags: int) -> tuple[dnslib.DNSRecord, dnslib.DNSLabel]:
    header = dnslib.DNSHeader(id=q.id, bitmap=flags & 0xFFF0, rcode=flags & 0xF)
    question = dnslib.DNSQuestion.parse(dnslib.DNSBuffer(q.question))   # keeps the case
    return dnslib.DNSRecord(header, q=question), question.qname


def _dnslib_pack(q: wire.Query, reply: dnslib.DNSRecord) -> bytes:
    if q.edns:
        reply.add_ar(dnslib.EDNS0(udp_len=EDNS_SIZE, flags="do" if q.do else ""))
    return bytes(reply.pack())        # dnslib packs a bytearray; every answer here is bytes


def sinkhole_dnslib(q: wire.Query, mode: str, ttl: int) -> bytes:
    if mode == "null" and q.qtype in (wire.A, wire.AAAA):
        reply, qname = _dnslib_reply(q, reply_flags(q.flags, wire.NOERROR))
        rdata = dnslib.A("0.0.0.0") if q.qtype == wire.A else dnslib.AAAA("::")
        reply.add_answer(dnslib.RR(qname, q.qtype, rdata=rdata, ttl=ttl))
        return _dnslib_pack(q, reply)
    rcode = wire.NXDOMAIN if mode == "nxdomain" else wire.NOERROR
    reply, qname = _dnslib_reply(q, reply_flags(q.flags, rcode))
    soa = dnslib.SOA("gcsguard.invalid", "blocked.gcsguard.invalid", (1, 3600, 600, 86400, ttl))
    reply.add_auth(dnslib.RR(qname, wire.SOA, rdata=soa, ttl=ttl))
    return _dnslib_pack(q, reply)


def from_cache_dnslib(q: wire.Query, entry: Entry, now: float, stale_ttl: int | None = None) -> bytes:
    stored = dnslib.DNSRecord.parse(wire.HEADER.pack(0, entry.flags, 1, *entry.counts)
                                    + q.question + entry.body)
    age = int(now - entry.stored)
    reply, _ = _dnslib_reply(q, reply_flags(q.flags, entry.flags & 0xF, _ad(q, entry)))
    for section, rrs in ((reply.rr, stored.rr), (reply.auth, stored.auth), (reply.ar, stored.ar)):
        for rr in rrs:
            rr.ttl = stale_ttl if stale_ttl is not None else max(0, rr.ttl - age)
            section.append(rr)
    return _dnslib_pack(q, reply)


# -- which builder answers a query: the one that matches the parser that read it ------------
def sinkhole_for(q: wire.Query, mode: str, ttl: int) -> bytes:
    return (sinkhole_dnslib if q.via_dnslib else sinkhole)(q, mode, ttl)


def cached_for(q: wire.Query, entry: Entry, now: float, stale_ttl: int | None = None) -> bytes:
    return (from_cache_dnslib if q.via_dnslib else from_cache)(q, entry, now, stale_ttl)
