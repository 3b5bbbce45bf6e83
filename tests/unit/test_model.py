from __future__ import annotations

import socket

import pytest

from netwarden.model import AF_PACKET, family_label, format_address, protocol_label


@pytest.mark.parametrize("family, sock_type, protocol, label", [
    (socket.AF_INET, socket.SOCK_STREAM, 6, "tcp"),
    (socket.AF_INET6, socket.SOCK_DGRAM, 17, "udp"),
    (socket.AF_INET, socket.SOCK_DGRAM, 1, "icmp"),     # ping socket
    (socket.AF_INET, socket.SOCK_RAW, 1, "icmp"),       # raw ping
    (socket.AF_INET6, socket.SOCK_RAW, 58, "icmpv6"),
    (socket.AF_INET, socket.SOCK_RAW, 253, "raw"),
    (AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003), "all"),
    (AF_PACKET, socket.SOCK_RAW, socket.htons(0x88B5), "0x88b5"),
])
def test_protocol_label(family: int, sock_type: int, protocol: int, label: str):
    assert protocol_label(family, sock_type, protocol) == label


def test_family_label():
    assert [family_label(f) for f in (socket.AF_INET, socket.AF_INET6, AF_PACKET, 40)] == \
        ["4", "6", "packet", "af40"]


def test_addresses():
    assert format_address(socket.AF_INET, bytes([10, 0, 0, 1]) + bytes(12)) == \
        (socket.AF_INET, "10.0.0.1")
    mapped = bytes(10) + b"\xff\xff" + bytes([192, 168, 1, 2])
    assert format_address(socket.AF_INET6, mapped) == (socket.AF_INET, "192.168.1.2")
    assert format_address(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, "fd00::1")) == \
        (socket.AF_INET6, "fd00::1")
    assert format_address(AF_PACKET, bytes(16)) == (AF_PACKET, "")
