"""Read what the BPF programs collected: flow counters, process events, health counters."""

from __future__ import annotations

import ctypes
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from netwarden.model import AF_PACKET, format_address
from netwarden.sensor import bpf_records as rec
from netwarden.sensor import libbpf as lb
from netwarden.sensor.hooks import OWNER_GENERATION_HOOKS, SOCKET_ITERATORS

if TYPE_CHECKING:
    from netwarden.sensor.loader import LoadedObject

log = logging.getLogger(__name__)

_MEMBARRIER_CMD_GLOBAL = 1
_SYS_MEMBARRIER = {"x86_64": 324, "aarch64": 283}


def kernel_dev_to_st_dev(dev: int) -> int:
    """The kernel's dev_t (major << 20 | minor) as stat()'s st_dev."""
    return os.makedev(dev >> 20, dev & 0xFFFFF)


class RcuSync:
    """Wait until every BPF program that started before this call has returned.

    membarrier(MEMBARRIER_CMD_GLOBAL) is synchronize_rcu() in the kernel, and tracepoint and
    cgroup BPF programs run inside RCU read-side sections. Where membarrier is unavailable, a
    50 ms sleep stands in (programs run for microseconds).
    """

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._nr = _SYS_MEMBARRIER.get(os.uname().machine)
        self.fallback_reason = "" if self._nr else "membarrier syscall number unknown"

    def wait(self) -> None:
        if self._nr is not None and self._libc.syscall(self._nr, _MEMBARRIER_CMD_GLOBAL, 0) == 0:
            return
        if not self.fallback_reason:
            self.fallback_reason = f"membarrier failed: {os.strerror(ctypes.get_errno())}"
            log.warning("%s; waiting 50 ms per drain instead", self.fallback_reason)
        time.sleep(0.05)


@dataclass(frozen=True)
class DrainedFlow:
    """One flow key's counters over one drain, summed over CPUs."""

    tgid: int
    sock_cookie: int
    exe_dev: int          # st_dev form
    exe_ino: int
    uid: int
    netns: int
    cgroup_id: int
    family: int
    sock_type: int
    protocol: int
    local_addr: str
    local_port: int
    remote_addr: str
    remote_port: int
    sent_bytes: int
    recv_bytes: int


def decode_flow(key: rec.FlowKey, slots: list[rec.FlowValue]) -> DrainedFlow:
    """Merge one key's per-CPU values: counters add up, identity comes from a marked slot."""
    ident = next((s for s in slots if s.flags & rec.FLOW_HAS_IDENTITY), slots[0])
    family, local = format_address(ident.family, bytes(ident.local_addr))
    _, remote = format_address(ident.family, bytes(ident.remote_addr))
    no_ports = ident.family == AF_PACKET
    return DrainedFlow(
        tgid=key.tgid, sock_cookie=key.sock_cookie,
        exe_dev=kernel_dev_to_st_dev(ident.exe_dev), exe_ino=ident.exe_ino, uid=ident.uid,
        netns=ident.netns, cgroup_id=ident.cgroup_id, family=family,
        sock_type=ident.sock_type, protocol=ident.protocol,
        local_addr=local, local_port=0 if no_ports else ident.local_port,
        remote_addr=remote, remote_port=0 if no_ports else ident.remote_port,
        sent_bytes=sum(s.sent_bytes for s in slots), recv_bytes=sum(s.recv_bytes for s in slots),
    )


class ControlBlock:
    """The `control` map's one entry, owned by the sensor: written whole on every change
    (by the drain and by the datagram-source hook's thread, so under a lock)."""

    def __init__(self, control_map: lb.Map) -> None:
        self._fd = control_map.fd
        self._lock = threading.Lock()
        self.value = rec.Control()
        lb.map_lookup(self._fd, ctypes.c_uint32(0), self.value)

    def update(self, **fields: int) -> None:
        with self._lock:
            for name, value in fields.items():
                setattr(self.value, name, value)
            lb.map_update(self._fd, ctypes.c_uint32(0), self.value)


@dataclass(frozen=True)
class CarriedFlow:
    """A flow found in `carry`: drained by an earlier sensor, maybe not committed."""

    batch: int
    flow: DrainedFlow


class FlowDrainer:
    """Flip the active epoch, wait out its writers, then read and clear what it counted.

    An epoch's counts live in two places: its flow table (flows keyed by peer) and, when the
    socket-counter programs are attached, in the state of TCP and UDP sockets of the sensor's
    network namespace (read by the socket iterators, which walk that namespace only).

    With a ``carry`` map (pinned), taking is two-phase: every drain also keeps what it took in
    `carry` under the write window's batch number, and only the store's commit of that
    window lets it go (:meth:`forget`). The socket iterators add to `carry` in the same
    program run as their exchange; a flow table is read without deleting, added to `carry`
    entry by entry (each entry marked with the drain's number, so a move cut short by
    kill -9 is finished by the next sensor without adding anything twice), then deleted.
    """

    def __init__(self, control: ControlBlock, tables: tuple[lb.Map, lb.Map],
                 socket_iterators: tuple[lb.Link, ...] = (),
                 rcu: RcuSync | None = None, carry: lb.Map | None = None) -> None:
        self.control = control
        self._tables = tables
        self._iterators = socket_iterators
        self._rcu = rcu or RcuSync()
        self._cpus = lb.possible_cpus()
        self._stride = (ctypes.sizeof(rec.FlowValue) + 7) // 8 * 8
        self._carry = carry
        #: Flows whose drained counts could not be kept in `carry` (full): written as
        #: usual, but a crash before their window is committed would lose them.
        self.carry_full = 0

    @classmethod
    def for_net(cls, net: LoadedObject) -> FlowDrainer:
        """The drainer of a loaded net object, its control block set from what attached.

        TCP reads are counted in tcp_rcv_space_adjust where it is attached (compat mode);
        elsewhere the receive hook, the drain iterator and the release hook claim them from
        the socket's sequence numbers. Counters kept in sockets
        need both ways out: the release hook and the drain iterators. An iterator walks the
        namespace of the process that runs it, so the programs are told which one that is.
        Sockets count through slots (no helper call) only while the hooks that renew the
        owner generation are attached, or a slot could outlive the thread it names.
        """
        control = ControlBlock(net.map("control"))
        counters = net.is_attached("cg_sock_release") and all(
            net.is_attached(name) for name in SOCKET_ITERATORS)
        slots = counters and all(net.is_attached(name) for name in OWNER_GENERATION_HOOKS)
        control.update(
            tcp_read_hooked=int(net.is_attached("tp_tcp_rcv_space_adjust")),
            socket_counters=int(counters),
            socket_slots=int(slots),
            drain_netns=os.stat("/proc/self/ns/net").st_ino)
        iterators = tuple(net.link(name) for name in SOCKET_ITERATORS) if counters else ()
        carry = net.map("carry") if net.pin_dir is not None else None
        return cls(control, (net.map("flows_a"), net.map("flows_b")), iterators, carry=carry)

    @property
    def carrying(self) -> bool:
        return self._carry is not None

    def drain(self, batch: int = 0) -> list[DrainedFlow]:
        """Everything counted since the previous drain; no byte is lost or counted twice.

        ``batch``: the write window these counts go to (kept in `carry` under it)."""
        idle = self.control.value.active_table & 1
        self.control.update(active_table=idle ^ 1,
                            carry_batch=batch if self._carry is not None else 0,
                            move_seq=self.control.value.move_seq + 1)
        self._rcu.wait()
        return self.read_table(idle) + self.read_sockets()

    def drain_all(self, batch: int = 0) -> list[DrainedFlow]:
        """At shutdown, after the byte hooks are detached: both epochs."""
        return self.drain(batch) + self.drain(batch)

    def finish_interrupted_move(self) -> int:
        """At start, with maps an earlier sensor pinned: if it was killed while moving the
        idle flow table into `carry`, finish that move (entries it already added are marked
        with its drain number and skipped). Returns the entries moved now."""
        if self._carry is None or not self.control.value.carry_batch:
            return 0
        return len(self.read_table(self.control.value.active_table & 1 ^ 1))

    def carried(self) -> list[CarriedFlow]:
        """Everything in `carry`: drained, and not known to be committed."""
        if self._carry is None:
            return []
        found = []
        value = rec.CarryValue()
        for key in lb.map_keys(self._carry.fd, rec.CarryKey):
            if lb.map_lookup(self._carry.fd, key, value):
                found.append(CarriedFlow(key.batch, decode_flow(key.key, [value.value])))
        return found

    def forget(self, committed_batch: int) -> int:
        """The store committed every window up to ``committed_batch``: let `carry` go of
        them. Safe beside a drain (it adds only to later batches)."""
        if self._carry is None:
            return 0
        gone = 0
        for key in lb.map_keys(self._carry.fd, rec.CarryKey):
            if key.batch <= committed_batch:
                gone += lb.map_delete(self._carry.fd, key)
        return gone

    def read_sockets(self) -> list[DrainedFlow]:
        """The idle epoch's counters kept in sockets (the iterators take them)."""
        raw = b"".join(iterator.read_iterator() for iterator in self._iterators)
        size = ctypes.sizeof(rec.FlowRecord)
        if len(raw) % size:
            raise ValueError(f"socket iterator wrote {len(raw)} bytes, not whole "
                             f"{size}-byte records")
        flows = []
        for offset in range(0, len(raw), size):
            record = rec.FlowRecord.from_buffer_copy(raw, offset)
            flows.append(decode_flow(record.key, [record.value]))
        return flows

    def read_table(self, index: int) -> list[DrainedFlow]:
        flows = []
        key_size = ctypes.sizeof(rec.FlowKey)
        value_stride = self._stride * self._cpus
        fd = self._tables[index].fd
        batches = (lb.map_drain_batches if self._carry is None else lb.map_lookup_batches)
        keys_read = []
        for keys, values, count in batches(fd, key_size, value_stride):
            for i in range(count):
                key = rec.FlowKey.from_buffer_copy(keys, i * key_size)
                slots = [rec.FlowValue.from_buffer_copy(values, i * value_stride + c * self._stride)
                         for c in range(self._cpus)]
                flows.append(decode_flow(key, slots))
                if self._carry is not None:
                    self._keep(key, slots)
                    keys_read.append(key)
        for key in keys_read:  # only now: each is in `carry`
            lb.map_delete(fd, key)
        return flows

    def _keep(self, key: rec.FlowKey, slots: list[rec.FlowValue]) -> None:
        """Add one flow-table entry to `carry`, once per drain (``move_seq`` marks it)."""
        assert self._carry is not None
        seq, batch = self.control.value.move_seq, self.control.value.carry_batch
        carry_key = rec.CarryKey(key=key, batch=batch)
        kept = rec.CarryValue()
        if lb.map_lookup(self._carry.fd, carry_key, kept):
            if kept.moved_seq == seq:
                return  # added by the move a killed sensor began
        else:
            ident = next((s for s in slots if s.flags & rec.FLOW_HAS_IDENTITY), slots[0])
            ctypes.memmove(ctypes.byref(kept.value), ctypes.byref(ident),
                           ctypes.sizeof(rec.FlowValue))
            kept.value.sent_bytes = kept.value.recv_bytes = 0
        kept.value.sent_bytes += sum(s.sent_bytes for s in slots)
        kept.value.recv_bytes += sum(s.recv_bytes for s in slots)
        kept.moved_seq = seq
        try:
            lb.map_update(self._carry.fd, carry_key, kept)
        except lb.LibbpfError:
            self.carry_full += 1


@dataclass(frozen=True)
class ProcessEvent:
    kind: int               # bpf_records.PROC_EXEC / PROC_FORK / PROC_EXIT
    pid: int
    ppid: int
    uid: int
    exe_dev: int            # st_dev form
    exe_ino: int
    start_time_ns: int
    comm: str
    filename: str
    argv: tuple[str, ...]
    argv_truncated: bool


def decode_proc_event(raw: bytes) -> ProcessEvent:
    event = rec.ProcEvent.from_buffer_copy(raw)
    args_offset = rec.ProcEvent.args.offset
    args = raw[args_offset: args_offset + min(event.args_len, rec.ARGS_LEN)]
    argv = tuple(a.decode(errors="replace") for a in args.rstrip(b"\0").split(b"\0")) \
        if args else ()
    return ProcessEvent(
        kind=event.kind, pid=event.pid, ppid=event.ppid, uid=event.uid,
        exe_dev=kernel_dev_to_st_dev(event.exe_dev), exe_ino=event.exe_ino,
        start_time_ns=event.start_time_ns, comm=event.comm.decode(errors="replace"),
        filename=event.filename.decode(errors="replace"), argv=argv,
        argv_truncated=event.args_len >= rec.ARGS_LEN,
    )


class EventRings:
    """The sensor's ring buffers (process events, DNS answers) behind one epoll fd.

    One thread waits on them (:meth:`wait`); any thread may :meth:`consume`, serialised here,
    so the drain can take records that arrived just before it (a DNS answer before the
    connection it led to).
    """

    def __init__(self) -> None:
        self._rings: lb.RingBuffer | None = None
        self._lock = threading.Lock()
        self.size_mismatches = 0

    def add(self, ring_map: lb.Map, record: type[ctypes.Structure],
            handler: Callable[[bytes], None]) -> None:
        """Records of ``ring_map`` must be exactly ``record``'s size; ``handler`` gets them."""
        size = ctypes.sizeof(record)

        def checked(raw: bytes) -> None:
            if len(raw) != size:
                self.size_mismatches += 1
                return
            try:
                handler(raw)
            except Exception:  # a bad record must not stop the ring buffer thread
                log.exception("%s handler failed", record.__name__)
        with self._lock:
            if self._rings is None:
                self._rings = lb.RingBuffer(ring_map.fd, checked)
            else:
                self._rings.add(ring_map.fd, checked)

    def __bool__(self) -> bool:
        return self._rings is not None

    def wait(self, timeout_s: float) -> None:
        if self._rings is not None:
            select.select([self._rings.epoll_fd], [], [], timeout_s)

    def consume(self) -> int:
        with self._lock:
            return self._rings.consume() if self._rings is not None else 0

    def close(self) -> None:
        with self._lock:
            if self._rings is not None:
                self._rings.close()
                self._rings = None


class HealthCounters:
    """Per-CPU health counters of one object; :meth:`deltas` says what moved since last read."""

    def __init__(self, source: str, health_map: lb.Map) -> None:
        self.source = source
        self._fd = health_map.fd
        self._cpus = lb.possible_cpus()
        self._last = [0] * rec.HEALTH_COUNTERS

    def totals(self) -> list[int]:
        values = (ctypes.c_uint64 * self._cpus)()
        totals = []
        for index in range(rec.HEALTH_COUNTERS):
            lb.map_lookup(self._fd, ctypes.c_uint32(index), values)
            totals.append(sum(values))
        return totals

    def deltas(self) -> dict[str, int]:
        totals = self.totals()
        moved = {rec.HEALTH_COUNTER_NAMES[i]: totals[i] - self._last[i]
                 for i in range(rec.HEALTH_COUNTERS) if totals[i] != self._last[i]}
        self._last = totals
        return moved
