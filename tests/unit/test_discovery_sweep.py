"""Paced sweeps: every target once, refused probes skipped, replies read while sending."""

from __future__ import annotations

import socket

from netwarden.discovery.sweep import paced_sweep


def test_refused_probes_are_skipped_and_replies_are_read():
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    attempts: list[int] = []
    replies: list[bytes] = []
    full_once = {3}

    def send(target: int) -> None:
        attempts.append(target)
        if target == 2:
            raise OSError(113, "No route to host")     # a queued ICMP error, say
        if target in full_once:
            full_once.clear()
            raise BlockingIOError
        peer.send(b"reply-%d" % target)

    def read_ready() -> None:
        while True:
            try:
                replies.append(ours.recv(64))
            except BlockingIOError:
                return

    with ours, peer:
        sent = paced_sweep([1, 2, 3, 4], send, read_ready, ours.fileno(), rate=1000,
                           wait_s=0.05)
    assert sent == 3
    assert attempts == [1, 2, 3, 3, 4]          # a full buffer is retried once
    assert b"".join(replies) == b"reply-1reply-3reply-4"
