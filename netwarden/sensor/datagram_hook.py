"""The one per-packet hook left, attached only while a socket needs it.

`tp_skb_copy_datagram_iovec` reads the source address of a datagram as a raw or ping socket
reads it: nothing else tells where such a datagram came from. But the tracepoint fires for
every TCP read, every unix-socket and netlink read and every large UDP datagram too, and a
program run costs ~85 ns whatever it does. So it is attached only while a raw or ping socket
exists:

- ``cg_sock_create`` counts raw and ping sockets as they are created (``datagram_sockets``;
  ``cg_sock_release`` counts them out) and, while the hook is detached, writes a notice to
  the ``datagram_notices`` ring, which wakes the sensor to attach it (:meth:`on_notice`);
- sockets that existed before the sensor started are found in ``/proc/net/{raw,raw6,icmp,
  icmp6}`` (of the sensor's own network namespace) at start, and re-read until they are gone;
- once none is left for ``linger_s`` seconds, :meth:`review` (called every drain) detaches it.

The first datagrams a new socket reads before the hook is attached (the notice takes a
wakeup and an attach, about a millisecond) are counted without their source address.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from netwarden.sensor import bpf_records as rec
from netwarden.sensor import libbpf as lb

if TYPE_CHECKING:
    from netwarden.sensor.collectors import ControlBlock
    from netwarden.sensor.loader import LoadedObject

log = logging.getLogger(__name__)

PROGRAM = "tp_skb_copy_datagram_iovec"
#: /proc/net tables that list raw and ping sockets.
SOCKET_TABLES = ("raw", "raw6", "icmp", "icmp6")
LINGER_S = 30.0


def count_listed_sockets(proc_root: str = "/proc") -> int:
    """Raw and ping sockets of this network namespace, as /proc/net lists them."""
    total = 0
    for table in SOCKET_TABLES:
        try:
            with open(os.path.join(proc_root, "net", table), encoding="ascii") as listing:
                total += max(0, sum(1 for _ in listing) - 1)   # less the header line
        except OSError:
            continue
    return total


class DatagramSourceHook:
    """Attach the datagram-source program while raw or ping sockets exist; thread-safe."""

    def __init__(self, net: LoadedObject, control: ControlBlock, proc_root: str = "/proc",
                 clock: Callable[[], float] = time.monotonic, linger_s: float = LINGER_S) -> None:
        self._net = net
        self._control = control
        self._proc_root = proc_root
        self._clock = clock
        self._linger_s = linger_s
        self._lock = threading.Lock()
        self._idle_since: float | None = None
        self._preexisting = False
        self.attaches = 0
        self.attach_failures = 0
        #: False where the plan attaches it for good (or it could not load): nothing to do.
        self.managed = net.is_on_demand(PROGRAM)

    def start(self) -> None:
        """Attach at once if raw or ping sockets already exist."""
        if self.managed and count_listed_sockets(self._proc_root):
            self._preexisting = True
            self.ensure_attached("raw or ping sockets existed before the sensor")

    def on_notice(self, raw: bytes) -> None:
        """A `datagram_notices` record: a raw or ping socket was just created."""
        notice = rec.DatagramNotice.from_buffer_copy(raw)
        self.ensure_attached(f"pid {notice.tgid} created a raw or ping socket")

    def live_sockets(self) -> int:
        value = ctypes.c_int64()
        lb.map_lookup(self._net.map("datagram_sockets").fd, ctypes.c_uint32(0), value)
        return value.value

    @property
    def attached(self) -> bool:
        return self._net.is_linked(PROGRAM)

    def ensure_attached(self, why: str) -> None:
        if not self.managed:
            return
        with self._lock:
            self._idle_since = None
            if self._net.is_linked(PROGRAM):
                return
            try:
                self._net.attach_on_demand(PROGRAM)
            except OSError as exc:
                self.attach_failures += 1
                log.error("cannot attach %s: %s", PROGRAM, exc)
                return
            self.attaches += 1
            self._control.update(datagram_hook=1)
            log.info("%s attached: %s", PROGRAM, why)

    def review(self) -> None:
        """Every drain: keep the hook while any raw or ping socket lives, else let it go."""
        if not self.managed:
            return
        if self._preexisting and not count_listed_sockets(self._proc_root):
            self._preexisting = False
        if self.live_sockets() > 0 or self._preexisting:
            self.ensure_attached("raw or ping sockets exist")
            return
        with self._lock:
            if not self._net.is_linked(PROGRAM):
                return
            now = self._clock()
            if self._idle_since is None:
                self._idle_since = now
                return
            if now - self._idle_since < self._linger_s:
                return
            # Say "detached" first: a socket created from here on sends a notice.
            self._control.update(datagram_hook=0)
            self._net.detach_on_demand(PROGRAM)
            self._idle_since = None
            log.info("%s detached: no raw or ping socket for %g s", PROGRAM, self._linger_s)
        if self.live_sockets() > 0:   # one appeared while detaching, before its notice
            self.ensure_attached("a raw or ping socket appeared while detaching")
