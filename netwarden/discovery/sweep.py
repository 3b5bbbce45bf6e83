"""Paced probing: send one probe per target at a fixed rate, read replies while waiting.

Shared by the ARP and ICMP sweeps. Replies are read between sends (so a fast LAN's answers
never pile up in the socket buffer) and for ``wait_s`` after the last probe.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def paced_sweep(targets: Sequence[T], send: Callable[[T], None], read_ready: Callable[[], None],
                fileno: int, rate: float, wait_s: float,
                clock: Callable[[], float] = time.monotonic) -> int:
    """Send to every target at ``rate`` per second; returns the number of probes sent.

    ``read_ready`` is called whenever the socket is readable; it must not block. A probe the
    kernel refuses (an earlier probe's "host unreachable" reported on this socket, a full
    neighbour queue) is skipped, not fatal: the sweep goes on.
    """
    interval = 1.0 / rate
    start = clock()
    sent = 0
    for index, item in enumerate(targets):
        due = start + index * interval
        _read_until(due, read_ready, fileno, clock)
        for _attempt in range(2):
            try:
                send(item)
                sent += 1
                break
            except BlockingIOError:
                # The socket's send buffer is full: let it drain, then try once more.
                _read_until(clock() + 0.01, read_ready, fileno, clock)
            except OSError:
                break
    _read_until(clock() + wait_s, read_ready, fileno, clock)
    return sent


def queued_datagrams(sock: socket.socket, size: int = 2048) -> Iterator[tuple[bytes, str]]:
    """(packet, sender address) for what a non-blocking socket holds, until it would block.

    An error queued on the socket (an ICMP port or host unreachable for an earlier probe) is
    skipped: it ends no read.
    """
    while True:
        try:
            packet, sender = sock.recvfrom(size)
        except BlockingIOError:
            return
        except OSError:
            continue
        yield packet, sender[0]


def _read_until(deadline: float, read_ready: Callable[[], None], fileno: int,
                clock: Callable[[], float]) -> None:
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            return
        readable, _, _ = select.select([fileno], [], [], remaining)
        if readable:
            read_ready()
