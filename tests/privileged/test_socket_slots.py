"""The byte hooks' helper-free fast path (sock_slots, bpf/net/slots.bpf.h), on this kernel.

A socket whose owner was captured takes a slot found from its cookie; calls from the thread
that armed it, in the same owner generation, count there. These tests read the slots
themselves (the counts alone would look the same on the slower path) and check that every
way out of a slot - the drain, a new generation, another thread, closing - keeps every byte.
Compat mode (kernels before 5.12, in the kernel matrix) has no socket counters and so no
slots: there the same traffic must count exactly with every slot left free.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator

import pytest

from netwarden.sensor import bpf_records as rec
from netwarden.sensor import hooks
from netwarden.sensor import libbpf as lb
from netwarden.sensor.collectors import DrainedFlow, FlowDrainer
from netwarden.sensor.hooks import BpfMode
from netwarden.sensor.loader import LoadedObject, Loader, ObjectConfig, cgroup2_root, \
    kernel_features

SO_COOKIE = 57            # <asm-generic/socket.h>; Python's socket module lacks it
SIZE, COUNT = 100, 2000


@pytest.fixture(params=["chosen", "compat"])
def net(request) -> Iterator[tuple[LoadedObject, FlowDrainer]]:
    """The net object as this kernel gets it, and its compat build (forced) for comparison."""
    features = kernel_features(hooks.OBJECTS)
    mode = (BpfMode(True, "forced by the test") if request.param == "compat"
            else hooks.choose_bpf_mode(features, "auto"))
    loader = Loader(features, cgroup2_root(), mode=mode)
    loaded = loader.load(hooks.NET_OBJECT, ObjectConfig(), hooks.choose_hook_sets(features))
    try:
        drainer = FlowDrainer.for_net(loaded)
        drainer.drain_all()
        yield loaded, drainer
    finally:
        loaded.close()


def slots_on(net: LoadedObject) -> bool:
    """Slots are used exactly where the full build runs (compat mode lacks atomics)."""
    return net.bpf_mode is not None and not net.bpf_mode.compat


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A UDP socket connected to a bound one, over loopback."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(30)                 # a lost datagram fails the test, never hangs it
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.connect(receiver.getsockname())
    with sender, receiver:
        yield sender, receiver


def cookie_of(sock: socket.socket) -> int:
    return struct.unpack("Q", sock.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8))[0]


def slot_of(net: LoadedObject, cookie: int) -> rec.SockSlot:
    slot = rec.SockSlot()
    lb.map_lookup(net.map("sock_slots").fd, ctypes.c_uint32(cookie % rec.SOCK_SLOTS), slot)
    return slot


def exchange(sender: socket.socket, receiver: socket.socket, count: int = COUNT) -> None:
    """One datagram at a time, each read before the next is sent: none can be dropped."""
    for _ in range(count):
        sender.send(b"s" * SIZE)
        receiver.recv(SIZE)


def bytes_of(flows: list[DrainedFlow], port: int) -> tuple[int, int]:
    """Sent and received by this process on the UDP socket bound to `port`."""
    mine = [f for f in flows if f.tgid == os.getpid() and f.protocol == socket.IPPROTO_UDP
            and f.local_port == port]
    return sum(f.sent_bytes for f in mine), sum(f.recv_bytes for f in mine)


def test_slots_are_enabled_and_sized_as_the_mirror_says(net):
    loaded, drainer = net
    assert drainer.control.value.socket_slots == int(slots_on(loaded))
    info = subprocess.run(["bpftool", "map", "show", "name", "sock_slots"],
                          capture_output=True, text=True, check=True).stdout
    assert f"max_entries {rec.SOCK_SLOTS}" in info


def test_a_connected_socket_counts_in_its_slot_and_the_drain_takes_it(net, pair):
    loaded, drainer = net
    sender, receiver = pair
    exchange(sender, receiver)
    slot = slot_of(loaded, cookie_of(sender))
    if slots_on(loaded):
        assert slot.cookie == cookie_of(sender) and slot.thread != 0 and not slot.tcp
        # The first call captures the owner on the slower path; (nearly) all later ones
        # land here (a task created meanwhile anywhere sends one call to the slower path).
        assert sum(slot.sent) >= SIZE * COUNT // 2
        assert sum(slot_of(loaded, cookie_of(receiver)).recv) >= SIZE * COUNT // 2
    else:
        assert slot.cookie == 0
    flows = drainer.drain_all()
    assert bytes_of(flows, sender.getsockname()[1]) == (SIZE * COUNT, 0)
    assert bytes_of(flows, receiver.getsockname()[1]) == (0, SIZE * COUNT)
    assert sum(slot_of(loaded, cookie_of(sender)).sent) == 0


def test_a_new_task_renews_the_generation_and_the_slot_re_arms(net, pair):
    loaded, drainer = net
    sender, receiver = pair
    exchange(sender, receiver, 10)
    before = slot_of(loaded, cookie_of(sender)).generation
    subprocess.run(["true"], check=True)          # a fork and an exec
    exchange(sender, receiver, 10)
    after = slot_of(loaded, cookie_of(sender))
    if slots_on(loaded):
        assert after.generation != before and after.thread != 0
    assert bytes_of(drainer.drain_all(), sender.getsockname()[1]) == (20 * SIZE, 0)


def test_another_thread_of_the_owner_takes_the_slot_over(net, pair):
    loaded, drainer = net
    sender, receiver = pair
    exchange(sender, receiver, 10)
    first = slot_of(loaded, cookie_of(sender)).thread
    worker = threading.Thread(target=exchange, args=(sender, receiver, 10))
    worker.start()
    worker.join()
    if slots_on(loaded):
        assert slot_of(loaded, cookie_of(sender)).thread not in (0, first)
    assert bytes_of(drainer.drain_all(), sender.getsockname()[1]) == (20 * SIZE, 0)


def test_a_pending_peer_disarms_the_slot(net, pair):
    """sendto() another address on the connected socket: the cgroup hook remembers that
    peer, and the byte hook must take the path that reads it, not count in the slot under
    the connected peer."""
    loaded, drainer = net
    sender, receiver = pair
    exchange(sender, receiver, 10)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.bind(("127.0.0.1", 0))
        other.settimeout(30)
        sender.sendto(b"p" * SIZE, other.getsockname())
        other.recv(SIZE)
        exchange(sender, receiver, 10)          # and the slot serves the socket again
        flows = drainer.drain_all()
        to_other = [f for f in flows if f.tgid == os.getpid()
                    and f.local_port == sender.getsockname()[1]
                    and f.remote_port == other.getsockname()[1]]
    assert sum(f.sent_bytes for f in to_other) == SIZE
    assert bytes_of(flows, sender.getsockname()[1]) == (21 * SIZE, 0)
    slot = slot_of(loaded, cookie_of(sender))
    assert sum(slot.sent) == 0                   # drained (and still held in full mode)
    assert (slot.thread != 0) == slots_on(loaded)


def test_closing_frees_the_slot_and_keeps_the_bytes(net, pair):
    loaded, drainer = net
    sender, receiver = pair
    exchange(sender, receiver)
    cookie, port = cookie_of(sender), sender.getsockname()[1]
    sender.close()
    assert slot_of(loaded, cookie).cookie == 0
    assert bytes_of(drainer.drain_all(), port) == (SIZE * COUNT, 0)
