"""Wire formats of the discovery probes: ARP, ICMP echo, NetBIOS node status, SSDP/UPnP."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from netwarden.discovery import arp, icmp, netbios, ssdp
from netwarden.model.discovery import ScanTarget

OWN_MAC = "52:54:00:12:34:56"


def test_arp_request_layout():
    frame = arp.arp_request(OWN_MAC, ipaddress.IPv4Address("10.78.0.2"),
                            ipaddress.IPv4Address("10.78.0.11"))
    assert len(frame) == 42
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == bytes.fromhex("525400123456")
    assert frame[12:14] == b"\x08\x06"
    htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", frame, 14)
    assert (htype, ptype, hlen, plen, op) == (1, 0x0800, 6, 4, 1)
    assert frame[28:32] == bytes([10, 78, 0, 2]) and frame[38:42] == bytes([10, 78, 0, 11])


def test_arp_reply_parsing():
    reply = (bytes.fromhex("525400123456") + bytes.fromhex("b827eb123456") + b"\x08\x06"
             + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + bytes.fromhex("b827eb123456")
             + bytes([10, 78, 0, 11]) + bytes.fromhex("525400123456") + bytes([10, 78, 0, 2]))
    assert arp.parse_arp_reply(reply) == arp.ArpReply("b8:27:eb:12:34:56", "10.78.0.11")
    request = arp.arp_request(OWN_MAC, ipaddress.IPv4Address("10.78.0.2"),
                              ipaddress.IPv4Address("10.78.0.11"))
    assert arp.parse_arp_reply(request) is None          # a request is not a reply
    assert arp.parse_arp_reply(reply[:30]) is None       # truncated


def test_icmp_echo_checksum_verifies():
    packet = icmp.echo_request(0x1234, 7)
    assert icmp.checksum(packet) == 0                    # a valid checksum sums to zero
    assert struct.unpack_from("!BBHHH", packet)[0] == 8


def test_icmp_reply_recognition():
    reply = struct.pack("!BBHHH", 0, 0, 0, 0x1234, 7) + b"x"
    assert icmp.is_echo_reply(reply, raw_ipv4=False, ident=None)
    assert icmp.is_echo_reply(reply, raw_ipv4=False, ident=0x1234)
    assert not icmp.is_echo_reply(reply, raw_ipv4=False, ident=0x9999)
    ip_header = bytes([0x45]) + b"\x00" * 19
    assert icmp.is_echo_reply(ip_header + reply, raw_ipv4=True, ident=0x1234)
    assert not icmp.is_echo_reply(icmp.echo_request(1, 1), raw_ipv4=False, ident=None)
    v6 = struct.pack("!BBHHH", 129, 0, 0, 5, 1)
    assert icmp.is_echo_reply(v6, raw_ipv4=False, ident=None, v6=True)


def test_netbios_wildcard_name_encoding_matches_nbtscan():
    # RFC 1001 14.1: '*' padded with NULs encodes as CKAAAA...; nbtscan sends the same.
    assert netbios.encode_name("*") == b"\x20CK" + b"A" * 30 + b"\x00"
    request = netbios.node_status_request(0xBEEF)
    assert len(request) == 50
    assert struct.unpack_from("!HHHHHH", request) == (0xBEEF, 0, 1, 0, 0, 0)
    assert request[-4:] == b"\x00\x21\x00\x01"


def _status_response(names: list[tuple[str, int, int]], compressed: bool = False) -> bytes:
    header = struct.pack("!HHHHHH", 1, 0x8400, 0, 1, 0, 0)
    rr_name = b"\xc0\x0c" if compressed else netbios.encode_name("*")
    table = b"".join(n.encode().ljust(15) + bytes([s]) + struct.pack("!H", f)
                     for n, s, f in names)
    rdata = bytes([len(names)]) + table + bytes.fromhex("001132aabb15") + b"\x00" * 40
    return header + rr_name + struct.pack("!HHIH", 0x21, 1, 0, len(rdata)) + rdata


@pytest.mark.parametrize("compressed", [False, True])
def test_netbios_node_status_parsing(compressed: bool):
    packet = _status_response([("NAS01", 0x00, 0x0400), ("HOME", 0x00, 0x8400),
                               ("NAS01", 0x20, 0x0400)], compressed)
    entries = netbios.parse_node_status(packet)
    assert entries[0] == netbios.NameEntry("NAS01", 0x00, False)
    assert entries[1] == netbios.NameEntry("HOME", 0x00, True)
    assert netbios.computer_name(entries) == "NAS01"
    assert netbios.workgroup(entries) == "HOME"


def test_netbios_rejects_queries_and_truncation():
    with pytest.raises(ValueError):
        netbios.parse_node_status(netbios.node_status_request(1))
    packet = _status_response([("NAS01", 0x00, 0x0400)])
    with pytest.raises(ValueError):
        netbios.parse_node_status(packet[:60])


def test_ssdp_response_parsing():
    data = (b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nLocation: "
            b"http://10.78.0.12:80/description.xml\r\nST: upnp:rootdevice\r\n"
            b"USN: uuid:x::upnp:rootdevice\r\nSERVER: Linux UPnP/1.0\r\n\r\n")
    response = ssdp.parse_response(data, "10.78.0.12")
    assert response == ssdp.SsdpResponse("10.78.0.12", "http://10.78.0.12:80/description.xml",
                                         "upnp:rootdevice", "uuid:x::upnp:rootdevice",
                                         "Linux UPnP/1.0")
    assert ssdp.parse_response(b"NOTIFY * HTTP/1.1\r\n\r\n", "10.78.0.12") is None


def test_upnp_description_parsing():
    xml = b"""<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0">
      <device><deviceType>urn:schemas-upnp-org:device:MediaRenderer:1</deviceType>
      <friendlyName>Living Room</friendlyName><manufacturer>Sonos, Inc.</manufacturer>
      <modelName>Sonos One</modelName><modelNumber>S18</modelNumber>
      <deviceList><device><friendlyName>inner</friendlyName></device></deviceList>
      </device></root>"""
    assert ssdp.parse_description(xml) == ssdp.Description(
        "Living Room", "Sonos, Inc.", "Sonos One S18",
        "urn:schemas-upnp-org:device:MediaRenderer:1")
    with pytest.raises(ValueError):
        ssdp.parse_description(b"<root/>")


def test_description_urls_never_leave_the_link():
    target = ScanTarget("eth0", 2, OWN_MAC, (ipaddress.IPv4Interface("10.78.0.2/24"),), (),
                        (ipaddress.IPv4Network("10.78.0.0/24"),))
    allowed = ssdp.description_url_allowed
    assert allowed("http://10.78.0.12:80/d.xml", "10.78.0.12", target)
    assert not allowed("http://10.78.0.13/d.xml", "10.78.0.12", target)  # not the responder
    assert not allowed("http://203.0.113.5/d.xml", "203.0.113.5", target)  # off the link
    assert not allowed("http://example.invalid/d.xml", "10.78.0.12", target)  # needs DNS
    assert not allowed("https://10.78.0.12/d.xml", "10.78.0.12", target)
