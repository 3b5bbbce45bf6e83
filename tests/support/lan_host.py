"""What one test-LAN device runs, inside its namespace: real responders on real sockets.

    python -m tests.support.lan_host --ip 10.78.0.11 [--tcp 22,80]
        [--mdns TYPE:INSTANCE:PORT ...] [--hostname raspi]
        [--ssdp FRIENDLY|MANUFACTURER|MODEL|DEVICETYPE] [--netbios NAME[/WORKGROUP]]

TCP listeners accept and close; mDNS is a real zeroconf responder; SSDP answers M-SEARCH
from port 1900 and serves the device description over HTTP on port 80; NetBIOS answers
node status queries (RFC 1002 4.2.18) on UDP 137. Prints "ready", runs until stdin closes
or it is killed.
"""

from __future__ import annotations

import argparse
import http.server
import socket
import struct
import sys
import threading

SSDP_GROUP = "239.255.255.250"
DESCRIPTION = """<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
  <specVersion><major>1</major><minor>0</minor></specVersion>
  <device>
    <deviceType>{device_type}</deviceType>
    <friendlyName>{friendly}</friendlyName>
    <manufacturer>{manufacturer}</manufacturer>
    <modelName>{model}</modelName>
    <UDN>uuid:2f402f80-da50-11e1-9b23-{mac}</UDN>
  </device>
</root>
"""


def tcp_listeners(ip: str, ports: list[int]) -> None:
    for port in ports:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((ip, port))
        server.listen(64)
        threading.Thread(target=_accept_and_close, args=(server,), daemon=True).start()


def _accept_and_close(server: socket.socket) -> None:
    while True:
        conn, _ = server.accept()
        conn.close()


def mdns_responder(ip: str, hostname: str, services: list[str]) -> object:
    from zeroconf import IPVersion, ServiceInfo, Zeroconf
    zc = Zeroconf(interfaces=[ip], ip_version=IPVersion.V4Only)
    for spec in services:
        service_type, instance, port = spec.split(":")
        full_type = f"{service_type}.local."
        zc.register_service(ServiceInfo(
            full_type, f"{instance}.{full_type}", addresses=[socket.inet_aton(ip)],
            port=int(port), properties={"path": "/"}, server=f"{hostname}.local."))
    return zc


def ssdp_responder(ip: str, spec: str) -> None:
    friendly, manufacturer, model, device_type = spec.split("|")
    location = f"http://{ip}:80/description.xml"
    body = DESCRIPTION.format(device_type=device_type, friendly=friendly,
                              manufacturer=manufacturer, model=model,
                              mac="001788000000").encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path != "/description.xml":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer((ip, 80), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("", 1900))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                    socket.inet_aton(SSDP_GROUP) + socket.inet_aton(ip))
    threading.Thread(target=_answer_msearch, args=(sock, location, device_type),
                     daemon=True).start()


def _answer_msearch(sock: socket.socket, location: str, device_type: str) -> None:
    reply_from = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    reply_from.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    while True:
        data, peer = sock.recvfrom(4096)
        if not data.startswith(b"M-SEARCH"):
            continue
        for st in ("upnp:rootdevice", device_type):
            sock.sendto((f"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\n"
                         f"LOCATION: {location}\r\nSERVER: Linux/6 UPnP/1.0 test/1\r\n"
                         f"ST: {st}\r\nUSN: uuid:2f402f80::{st}\r\n\r\n").encode(), peer)


def netbios_responder(ip: str, spec: str) -> None:
    name, _, group = spec.partition("/")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ip, 137))
    threading.Thread(target=_answer_nbstat, args=(sock, name, group or "WORKGROUP"),
                     daemon=True).start()


def _answer_nbstat(sock: socket.socket, name: str, group: str) -> None:
    table = [(name, 0x00, 0x0400), (name, 0x20, 0x0400), (group, 0x00, 0x8400)]
    while True:
        data, peer = sock.recvfrom(1024)
        if len(data) < 50 or struct.unpack_from("!H", data, 46)[0] != 0x0021:
            continue
        (tid,) = struct.unpack_from("!H", data)
        names = b"".join(n.encode().ljust(15)[:15] + bytes([suffix]) + struct.pack("!H", flags)
                         for n, suffix, flags in table)
        rdata = bytes([len(table)]) + names + b"\x00" * 46   # statistics: unit id etc.
        answer = (struct.pack("!HHHHHH", tid, 0x8400, 0, 1, 0, 0) + data[12:46]
                  + struct.pack("!HHIH", 0x0021, 0x0001, 0, len(rdata)) + rdata)
        sock.sendto(answer, peer)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ip", required=True)
    parser.add_argument("--tcp", default="")
    parser.add_argument("--mdns", action="append", default=[])
    parser.add_argument("--hostname", default="")
    parser.add_argument("--ssdp", default="")
    parser.add_argument("--netbios", default="")
    args = parser.parse_args()
    tcp_listeners(args.ip, [int(p) for p in args.tcp.split(",") if p])
    keep = []
    if args.mdns:
        keep.append(mdns_responder(args.ip, args.hostname, args.mdns))
    if args.ssdp:
        ssdp_responder(args.ip, args.ssdp)
    if args.netbios:
        netbios_responder(args.ip, args.netbios)
    print("ready", flush=True)
    sys.stdin.read()   # until the test closes stdin or kills us


if __name__ == "__main__":
    main()
