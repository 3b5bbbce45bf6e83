"""Listening sockets as this kernel reports them: sock_diag (the sensor's way) and /proc/net
(the fallback) agree, for sockets the test holds."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from netwarden.sensor.listening import diag_listening, read_listening


def test_sock_diag_and_proc_agree_on_this_hosts_listeners():
    """The kernel's two answers, for sockets this test holds (the fast one is the default)."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as tcp, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        tcp.bind(("::1", 0))
        tcp.listen()
        udp.bind(("127.0.0.1", 0))
        client.connect(("127.0.0.1", udp.getsockname()[1]))    # connected: not listening
        mine = {("tcp", tcp.getsockname()[1], "::1", os.fstat(tcp.fileno()).st_ino),
                ("udp", udp.getsockname()[1], "127.0.0.1", os.fstat(udp.fileno()).st_ino)}
        by_diag = {tuple(s) for s in diag_listening()}
        by_proc = {tuple(s) for s in read_listening(Path("/proc"), use_diag=False)}
        ports = {p for _, p, _, _ in mine}
        assert {s for s in by_diag if s[1] in ports} >= {m for m in mine if m[0] == "tcp"}
        assert ("udp", client.getsockname()[1]) not in {(s[0], s[1]) for s in by_diag}
        # The bound UDP port may fall in the ephemeral range, which read_listening leaves
        # out; compare the raw dumps for it.
        assert [m for m in mine if m[0] == "udp"][0] in by_diag
        assert {s for s in by_proc if s[1] in ports and s[0] == "tcp"} == \
            {s for s in by_diag if s[1] in ports and s[0] == "tcp"}
