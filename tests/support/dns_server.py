"""A small authoritative DNS server for tests (UDP and TCP), built on dnspython.

    python -m tests.support.dns_server ADDRESS PORT NAME=TYPE:VALUE ...
e.g. web.test=A:10.0.0.1 api.test=CNAME:edge.test edge.test=A:10.0.0.3
It prints "ready" once both sockets are bound, then answers until killed.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import sys
import threading

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


def build_zone(specs: list[str]) -> dict[str, list[tuple[str, str]]]:
    zone: dict[str, list[tuple[str, str]]] = {}
    for spec in specs:
        name, _, record = spec.partition("=")
        rtype, _, value = record.partition(":")
        zone.setdefault(name.rstrip(".").lower() + ".", []).append((rtype, value))
    return zone


def answer(query_wire: bytes, zone: dict[str, list[tuple[str, str]]]) -> bytes:
    query = dns.message.from_wire(query_wire)
    reply = dns.message.make_response(query)
    question = query.question[0]
    name = question.name.to_text().lower()
    wanted = dns.rdatatype.to_text(question.rdtype)
    if name not in zone:
        reply.set_rcode(dns.rcode.NXDOMAIN)
        return reply.to_wire()
    for _ in range(8):   # follow CNAMEs inside the zone
        records = zone.get(name, [])
        cname = next((v for t, v in records if t == "CNAME"), None)
        if cname:
            reply.answer.append(dns.rrset.from_text(name, 60, "IN", "CNAME", cname + "."))
            name = cname.rstrip(".").lower() + "."
            continue
        values = [v for t, v in records if t == wanted]
        if values:
            reply.answer.append(dns.rrset.from_text_list(name, 60, "IN", wanted, values))
        break
    return reply.to_wire()


def serve(address: str, port: int, zone: dict[str, list[tuple[str, str]]]) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    class Udp(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data, sock = self.request
            sock.sendto(answer(data, zone), self.client_address)

    class Tcp(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            (length,) = struct.unpack("!H", self.rfile.read(2))
            reply = answer(self.rfile.read(length), zone)
            self.wfile.write(struct.pack("!H", len(reply)) + reply)

    class UdpServer(socketserver.ThreadingUDPServer):
        address_family = family
        allow_reuse_address = True

    class TcpServer(socketserver.ThreadingTCPServer):
        address_family = family
        allow_reuse_address = True

    udp, tcp = UdpServer((address, port), Udp), TcpServer((address, port), Tcp)
    threading.Thread(target=tcp.serve_forever, daemon=True).start()
    print("ready", flush=True)
    udp.serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), build_zone(sys.argv[3:]))
