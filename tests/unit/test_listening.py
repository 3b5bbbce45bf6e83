"""Listening ports read from a /proc fixture tree: TCP LISTEN and unconnected UDP outside the
ephemeral range, each attributed to the process holding the socket."""

from __future__ import annotations

import os
from pathlib import Path

from netwarden.model.baseline import ListeningPort
from netwarden.sensor.listening import ListenWatch, parse_table

HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
          "timeout inode\n")
TCP = HEADER + (
    "   0: 0100007F:151A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0  0 "
    "1001 1 0 100 0 0 10 0\n"
    "   1: 0200000A:A2B4 0900000A:0016 01 00000000:00000000 00:00000000 00000000  1000  0 "
    "1002 1 0 100 0 0 10 0\n")
UDP = HEADER + (
    "  10: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000   0  0 "
    "1003 2 0 0\n"
    "  11: 00000000:9C41 00000000:0000 07 00000000:00000000 00:00000000 00000000   0  0 "
    "1004 2 0 0\n"
    "  12: 0200000A:14EA 0900000A:0035 01 00000000:00000000 00:00000000 00000000   0  0 "
    "1005 2 0 0\n")
TCP6 = ("  sl  local_address                         remote_address                        st "
        "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A "
        "00000000:00000000 00:00000000 00000000     0        0 1006 1 0 100 0 0 10 0\n")


def test_parse_keeps_listeners_only():
    assert [(s.port, s.address, s.inode) for s in parse_table(TCP, "tcp", 4)] == \
        [(5402, "127.0.0.1", 1001)]
    assert [(s.port, s.address) for s in parse_table(TCP6, "tcp", 6)] == [(8080, "::1")]
    assert [s.port for s in parse_table(UDP, "udp", 4)] == [5353, 40001]


def _proc(tmp_path: Path) -> Path:
    root = tmp_path / "proc"
    (root / "net").mkdir(parents=True)
    (root / "sys/net/ipv4").mkdir(parents=True)
    (root / "sys/net/ipv4/ip_local_port_range").write_text("32768\t60999\n")
    for name, text in (("tcp", TCP), ("udp", UDP), ("tcp6", TCP6)):
        (root / "net" / name).write_text(text)
    pid = root / "4242"
    (pid / "fd").mkdir(parents=True)
    os.symlink("/usr/bin/python3.11", pid / "exe")
    (pid / "comm").write_text("python3\n")
    os.symlink("socket:[1006]", pid / "fd" / "3")
    os.symlink("/dev/null", pid / "fd" / "0")
    return root


def test_watch_attributes_new_ports_and_skips_ephemeral_udp(tmp_path: Path):
    watch = ListenWatch(_proc(tmp_path), use_diag=False)
    ports = sorted(watch.scan(), key=lambda p: (p.protocol, p.port))
    assert ports == [
        ListeningPort("tcp", 5402, "127.0.0.1", "", ""),
        ListeningPort("tcp", 8080, "::1", "/usr/bin/python3.11", "python3"),
        ListeningPort("udp", 5353, "0.0.0.0", "", "")]
    # Attributed once, when it appeared: the owner is kept while the port stays.
    (tmp_path / "proc/4242/fd/3").unlink()
    assert ListeningPort("tcp", 8080, "::1", "/usr/bin/python3.11", "python3") in watch.scan()

