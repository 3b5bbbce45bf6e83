"""The DNS answer parser, on messages built by an independent implementation (dnspython)."""

from __future__ import annotations

import struct

import dns.message
import dns.rcode
import dns.rrset
import pytest

from netwarden.sensor.dns import (
    DnsFormatError, DnsNames, DnsStreams, dns_message, parse_answer,
)


def response(qname: str, rrsets: list[tuple[str, str, list[str]]], rcode: int = 0,
             qtype: str = "A") -> bytes:
    query = dns.message.make_query(qname, qtype)
    reply = dns.message.make_response(query)
    reply.set_rcode(rcode)
    for owner, rtype, values in rrsets:
        reply.answer.append(dns.rrset.from_text_list(owner, 300, "IN", rtype, values))
    return reply.to_wire()


def test_a_records():
    wire = response("example.com.", [("example.com.", "A", ["93.184.216.34", "93.184.216.35"])])
    assert sorted(parse_answer(wire)) == [("93.184.216.34", "example.com"),
                                          ("93.184.216.35", "example.com")]


def test_cname_chain_maps_to_the_asked_name():
    wire = response("www.shop.example.", [
        ("www.shop.example.", "CNAME", ["shop.edge.example."]),
        ("shop.edge.example.", "CNAME", ["e1.cdn.example."]),
        ("e1.cdn.example.", "A", ["10.1.2.3"]),
    ])
    assert parse_answer(wire) == [("10.1.2.3", "www.shop.example")]


def test_aaaa_and_case():
    wire = response("IPv6.Example.", [("ipv6.example.", "AAAA", ["2001:db8::1"])], qtype="AAAA")
    assert parse_answer(wire) == [("2001:db8::1", "ipv6.example")]


def test_errors_and_queries_teach_nothing():
    assert parse_answer(response("gone.example.", [], rcode=dns.rcode.NXDOMAIN)) == []
    assert parse_answer(dns.message.make_query("x.example.", "A").to_wire()) == []


def test_tcp_prefix_and_truncation():
    wire = response("t.example.", [("t.example.", "A", ["10.0.0.1", "10.0.0.2"])])
    both = parse_answer(dns_message(struct.pack("!H", len(wire)) + wire, tcp=True))
    assert sorted(both) == [("10.0.0.1", "t.example"), ("10.0.0.2", "t.example")]
    # Cut inside the second record: the first still counts.
    assert parse_answer(wire[:-2]) == both[:1]
    with pytest.raises(DnsFormatError):
        parse_answer(wire[:8])


def test_pointer_loop_is_refused():
    header = struct.pack("!HHHHHH", 1, 0x8180, 1, 0, 0, 0)
    looping = header + b"\xc0\x0c" + b"\x00\x01\x00\x01"   # the name points at itself
    with pytest.raises(DnsFormatError):
        parse_answer(looping)


def test_names_cache_keeps_the_latest_and_is_bounded():
    names = DnsNames(capacity=2)
    names.learn(response("a.example.", [("a.example.", "A", ["10.0.0.1"])]), tcp=False)
    names.learn(response("b.example.", [("b.example.", "A", ["10.0.0.1", "10.0.0.2"])]),
                tcp=False)
    assert names.name_for("10.0.0.1") == "b.example"
    names.learn(response("c.example.", [("c.example.", "A", ["10.0.0.3"])]), tcp=False)
    # 10.0.0.1 was just looked up, so 10.0.0.2 was the least recently used.
    assert len(names) == 2 and names.name_for("10.0.0.2") == ""
    assert names.name_for("10.0.0.1") == "b.example"
    names.learn(b"\x00\x01", tcp=False)
    assert names.malformed == 1


# ---- DNS over TCP as receive calls read it (DnsStreams) ----

def framed(message: bytes) -> bytes:
    return struct.pack("!H", len(message)) + message


def test_a_length_read_apart_from_its_message_is_joined():
    streams = DnsStreams()
    answer = b"\x12\x34" + b"m" * 40
    assert streams.feed(7, framed(answer)[:2]) == []
    assert len(streams) == 1
    assert streams.feed(7, framed(answer)[2:]) == [answer]
    assert len(streams) == 0


def test_two_messages_in_one_read_and_one_in_three():
    streams = DnsStreams()
    first, second = b"a" * 20, b"b" * 30
    assert streams.feed(1, framed(first) + framed(second)) == [first, second]
    data = framed(b"c" * 50)
    assert streams.feed(1, data[:1]) == []
    assert streams.feed(2, framed(first)) == [first]           # another connection between
    assert streams.feed(1, data[1:20]) == []
    assert streams.feed(1, data[20:]) == [b"c" * 50]


def test_a_piece_cut_short_gives_what_was_kept_and_forgets_the_stream():
    streams = DnsStreams()
    whole = framed(b"d" * 3000)
    assert streams.feed(5, whole[:1536], truncated=True) == [b"d" * 1534]
    assert len(streams) == 0
    assert streams.feed(5, b"") == []


def test_connections_are_bounded():
    streams = DnsStreams(max_streams=3)
    for stream in range(10):
        streams.feed(stream, b"\x00")
    assert len(streams) == 3
