"""The datagram-source hook is attached only while a raw or ping socket exists.

Against the real kernel objects: creating a raw socket counts it and sends a notice while the
hook is detached, the notice attaches it, and it is let go once no such socket is left."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from netwarden.sensor import hooks
from netwarden.sensor.bpf_records import DatagramNotice
from netwarden.sensor.collectors import EventRings, FlowDrainer
from netwarden.sensor.datagram_hook import PROGRAM, DatagramSourceHook
from netwarden.sensor.loader import (
    LoadedObject, Loader, ObjectConfig, cgroup2_root, kernel_features,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def net() -> Iterator[LoadedObject]:
    features = kernel_features(hooks.OBJECTS)
    mode = hooks.choose_bpf_mode(features)
    plan = hooks.choose_packet_hooks(features, mode)
    loaded = Loader(features, cgroup2_root(), mode=mode, packet_hooks=plan).load(
        hooks.NET_OBJECT, ObjectConfig(), hooks.choose_hook_sets(features))
    yield loaded
    loaded.close()


#: Holds an ICMP datagram ("ping") socket open in a network namespace of its own, where ping
#: sockets may be opened by root (net.ipv4.ping_group_range is per namespace, "1 0" = nobody).
PING_HOLDER = """
import socket, sys
open("/proc/sys/net/ipv4/ping_group_range", "w").write("0 0")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
print("ready", flush=True)
sys.stdin.read()
"""


@contextmanager
def ping_socket() -> Iterator[None]:
    holder = subprocess.Popen(["unshare", "--net", sys.executable, "-c", PING_HOLDER],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        yield
    finally:
        holder.communicate(timeout=10)


def notices_for(net: LoadedObject, hook: DatagramSourceHook) -> tuple[EventRings, list[int]]:
    rings, seen = EventRings(), []

    def record(raw: bytes) -> None:
        seen.append(DatagramNotice.from_buffer_copy(raw).tgid)
        hook.on_notice(raw)
    rings.add(net.map("datagram_notices"), DatagramNotice, record)
    return rings, seen


def test_a_raw_socket_attaches_the_hook_and_its_close_lets_it_go(net, tmp_path):
    clock = Clock()
    control = FlowDrainer.for_net(net).control
    hook = DatagramSourceHook(net, control, proc_root=str(tmp_path), clock=clock, linger_s=5)
    assert hook.managed and not hook.attached
    rings, seen = notices_for(net, hook)
    try:
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, 253)
        assert hook.live_sockets() == 1
        rings.consume()
        assert seen and hook.attached and control.value.datagram_hook == 1
        # Attached: a second raw or ping socket sends no notice.
        with ping_socket():
            rings.consume()
            assert len(seen) == 1 and hook.live_sockets() == 2
            raw.close()
            hook.review()
            assert hook.attached                    # the ping socket is still open
        assert hook.live_sockets() == 0
        hook.review()                               # idle from now
        clock.now += 4
        hook.review()
        assert hook.attached                        # not idle long enough
        clock.now += 2
        hook.review()
        assert not hook.attached and control.value.datagram_hook == 0
        # Detached again: the next raw socket sends a notice and attaches it.
        with socket.socket(socket.AF_INET6, socket.SOCK_RAW, 253):
            rings.consume()
            assert len(seen) == 2 and hook.attached
    finally:
        rings.close()


def test_raw_sockets_that_predate_the_sensor_keep_it_attached(net, tmp_path):
    """Found in /proc/net/raw at start (the counter never saw them being created)."""
    (tmp_path / "net").mkdir()
    listing = tmp_path / "net" / "raw"
    listing.write_text("  sl  local_address rem_address   st\n   1: 00000000:00FD 0:0 07\n")
    clock = Clock()
    hook = DatagramSourceHook(net, FlowDrainer.for_net(net).control, proc_root=str(tmp_path),
                              clock=clock, linger_s=0)
    hook.start()
    assert hook.attached
    hook.review()
    clock.now += 10
    hook.review()
    assert hook.attached                           # still listed
    listing.write_text("  sl  local_address rem_address   st\n")
    hook.review()
    clock.now += 1
    hook.review()
    assert not hook.attached
    assert net.is_on_demand(PROGRAM)
