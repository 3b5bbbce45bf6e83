"""The one registry of BPF objects, programs and maps, and the choice of byte-hook set.

Selection is a pure function of what the running kernel offers (:class:`KernelFeatures`), so
it is unit-tested with feature sets of kernels this machine cannot boot.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


class AttachKind(enum.Enum):
    AUTO = "auto"        # tracing programs: libbpf attaches by section name
    CGROUP = "cgroup"    # cgroup programs: attached to the cgroup2 root


@dataclass(frozen=True)
class ProgramSpec:
    name: str
    attach: AttachKind
    required: bool = False
    #: Kernel BTF names that must exist for this program to load (tracepoints or functions).
    needs_tracepoints: tuple[str, ...] = ()
    needs_functions: tuple[str, ...] = ()
    purpose: str = ""
    #: Only in the full BPF mode (see :class:`BpfMode`); left out in compat mode.
    full_mode_only: bool = False
    #: Only in compat mode (what full mode does another way).
    compat_mode_only: bool = False
    #: Loaded only when the hooks read system call arguments (True) or only when they do
    #: not (False); see :class:`PacketHookPlan`. None: either way.
    syscall_args: bool | None = None
    #: Runs for every packet but is needed only while some socket needs it: loaded, and
    #: attached by the sensor on demand (unless the plan says always).
    on_demand: bool = False


@dataclass(frozen=True)
class HookSet:
    """Alternative programs that count bytes sent and received."""

    name: str
    programs: tuple[ProgramSpec, ...]
    description: str
    #: Its programs can be preempted mid-run (fexit trampolines): counters need atomic adds.
    preemptible: bool = False

    @property
    def program_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.programs)


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    filename: str
    required: bool
    programs: tuple[ProgramSpec, ...]
    maps: tuple[str, ...]
    hook_sets: tuple[HookSet, ...] = ()
    #: The same programs built for kernels before 5.12 (see :class:`BpfMode`); "" if none.
    compat_filename: str = ""

    def filename_for(self, mode: BpfMode) -> str:
        return self.compat_filename if mode.compat and self.compat_filename else self.filename

    def all_program_names(self) -> tuple[str, ...]:
        names = [p.name for p in self.programs]
        for hook_set in self.hook_sets:
            names.extend(hook_set.program_names)
        return tuple(names)


TRACEPOINT_SET = HookSet(
    name="tracepoint",
    description="tp_btf sock_send_length/sock_recv_length: every send and receive path "
                "(kernel >= 6.3)",
    programs=(
        ProgramSpec("tp_sock_send_length", AttachKind.AUTO, required=True,
                    needs_tracepoints=("sock_send_length",), purpose="bytes sent"),
        ProgramSpec("tp_sock_recv_length", AttachKind.AUTO, required=True,
                    needs_tracepoints=("sock_recv_length",), purpose="bytes received"),
    ),
)

FEXIT_SET = HookSet(
    name="fexit",
    description="fexit on the protocol functions (inet_sendmsg, inet_recvmsg, ...) for kernels "
                "without the length tracepoints (a hook on sock_sendmsg would load there and "
                "count nothing)",
    preemptible=True,
    programs=(
        ProgramSpec("fexit_inet_sendmsg", AttachKind.AUTO, required=True,
                    needs_functions=("inet_sendmsg",), purpose="IPv4 bytes sent"),
        ProgramSpec("fexit_inet_recvmsg", AttachKind.AUTO, required=True,
                    needs_functions=("inet_recvmsg",), purpose="IPv4 bytes received"),
        ProgramSpec("fexit_inet6_sendmsg", AttachKind.AUTO,
                    needs_functions=("inet6_sendmsg",), purpose="IPv6 bytes sent"),
        ProgramSpec("fexit_inet6_recvmsg", AttachKind.AUTO,
                    needs_functions=("inet6_recvmsg",), purpose="IPv6 bytes received"),
        ProgramSpec("fexit_inet_sendpage", AttachKind.AUTO, needs_functions=("inet_sendpage",),
                    purpose="sendfile/splice to sockets (kernels < 6.5)"),
        ProgramSpec("fexit_packet_sendmsg", AttachKind.AUTO,
                    needs_functions=("packet_sendmsg",), purpose="AF_PACKET bytes sent"),
        ProgramSpec("fexit_packet_recvmsg", AttachKind.AUTO,
                    needs_functions=("packet_recvmsg",), purpose="AF_PACKET bytes received"),
    ),
)

#: The net object's drain iterators: each reads the counters kept in one kind of socket.
SOCKET_ITERATORS = ("iter_drain_tcp", "iter_drain_udp")
#: The net object's programs that renew owner_generation: sockets count through slots (the
#: helper-free fast path) only while both are attached.
OWNER_GENERATION_HOOKS = ("tp_owner_task_new", "tp_owner_exec")

NET_OBJECT = ObjectSpec(
    name="net",
    filename="net.bpf.o",
    required=True,
    hook_sets=(TRACEPOINT_SET, FEXIT_SET),
    programs=(
        ProgramSpec("tp_tcp_rcv_space_adjust", AttachKind.AUTO, compat_mode_only=True,
                    needs_tracepoints=("tcp_rcv_space_adjust",),
                    purpose="TCP bytes read, by any path (recvmsg, splice); in full mode the "
                            "receive hook, the drain iterator and the release hook count them"),
        ProgramSpec("tp_skb_copy_datagram_iovec", AttachKind.AUTO, on_demand=True,
                    needs_tracepoints=("skb_copy_datagram_iovec",),
                    purpose="source of datagrams read by raw and ping sockets (runs for every "
                            "datagram and TCP read: attached while such a socket exists)"),
        ProgramSpec("tp_net_dev_queue", AttachKind.AUTO, needs_tracepoints=("net_dev_queue",),
                    syscall_args=False,
                    purpose="destination of unconnected raw/ping sends (runs for every packet; "
                            "where the hooks read system call arguments, sendto's address "
                            "gives it instead)"),
        ProgramSpec("sockops_birth", AttachKind.CGROUP,
                    purpose="marks TCP sockets opened while the sensor runs"),
        ProgramSpec("cg_sock_create", AttachKind.CGROUP,
                    purpose="counts raw and ping sockets, so the datagram-source hook is "
                            "attached while one exists"),
        ProgramSpec("cg_sendmsg4", AttachKind.CGROUP, purpose="UDP/IPv4 send destination"),
        ProgramSpec("cg_sendmsg6", AttachKind.CGROUP, purpose="UDP/IPv6 send destination"),
        ProgramSpec("cg_recvmsg4", AttachKind.CGROUP, purpose="UDP/IPv4 receive source"),
        ProgramSpec("cg_recvmsg6", AttachKind.CGROUP, purpose="UDP/IPv6 receive source"),
        ProgramSpec("cg_sock_release", AttachKind.CGROUP,
                    purpose="hands a closing socket's counters over"),
        ProgramSpec("iter_drain_tcp", AttachKind.AUTO, full_mode_only=True,
                    purpose="reads the counters kept in TCP sockets at each drain"),
        ProgramSpec("iter_drain_udp", AttachKind.AUTO, full_mode_only=True,
                    purpose="reads the counters kept in UDP sockets at each drain"),
        ProgramSpec("tp_owner_task_new", AttachKind.AUTO, full_mode_only=True,
                    needs_tracepoints=("task_newtask",),
                    purpose="a new task: sockets' fast-path slots re-arm (with the exec hook, "
                            "lets the byte hooks count without a helper call)"),
        ProgramSpec("tp_owner_exec", AttachKind.AUTO, full_mode_only=True,
                    needs_tracepoints=("sched_process_exec",),
                    purpose="an exec: sockets' fast-path slots re-arm"),
    ),
    maps=("flows_a", "flows_b", "flow_tables", "control", "health", "sock_states",
          "sock_states_by_addr", "sock_state_zero", "sock_addr_scratch", "sock_slots",
          "dns_events", "datagram_notices", "datagram_sockets", "carry"),
    compat_filename="net_compat.bpf.o",
)

EXEC_OBJECT = ObjectSpec(
    name="exec",
    filename="exec.bpf.o",
    required=False,
    programs=(
        ProgramSpec("tp_sched_process_exec", AttachKind.AUTO,
                    needs_tracepoints=("sched_process_exec",), purpose="exec events"),
        ProgramSpec("tp_sched_process_fork", AttachKind.AUTO,
                    needs_tracepoints=("sched_process_fork",), purpose="fork events"),
        ProgramSpec("tp_sched_process_exit", AttachKind.AUTO,
                    needs_tracepoints=("sched_process_exit",), purpose="exit events"),
    ),
    maps=("proc_events", "health"),
)

#: DNS answers from packets, for kernels where the receive hook cannot read them from the
#: reader's buffer (see :class:`PacketHookPlan`); runs for every packet received.
DNS_OBJECT = ObjectSpec(
    name="dns",
    filename="dns.bpf.o",
    required=False,
    programs=(
        ProgramSpec("dns_ingress", AttachKind.CGROUP,
                    purpose="DNS answers received by any socket -> names of remote addresses"),
    ),
    maps=("dns_events", "health"),
)

#: Inbound port scans ([scan], docs/port-scans.md): hooks that run for dropped packets and
#: new connections only, never for an ordinary packet.
SCAN_OBJECT = ObjectSpec(
    name="scan",
    filename="scan.bpf.o",
    required=False,
    programs=(
        ProgramSpec("tp_kfree_skb", AttachKind.AUTO, needs_tracepoints=("kfree_skb",),
                    purpose="probes of ports with no socket (TCP and UDP; FIN/NULL/XMAS a "
                            "listener discarded), from the dropped packet"),
        ProgramSpec("sockops_scan", AttachKind.CGROUP,
                    purpose="SYNs to open TCP ports, and whether the handshake completed"),
    ),
    maps=("scan_probes", "scan_seen", "health"),
)

OBJECTS: tuple[ObjectSpec, ...] = (NET_OBJECT, EXEC_OBJECT, DNS_OBJECT, SCAN_OBJECT)

HOOK_SET_CHOICES = ("auto",) + tuple(s.name for s in NET_OBJECT.hook_sets)
BPF_MODE_CHOICES = ("auto", "full", "compat")
PACKET_HOOK_CHOICES = ("auto", "always")

#: The kernel function (a BPF helper) the hooks need to read system call arguments (5.15).
TASK_PT_REGS = "bpf_task_pt_regs"
#: Machines whose system call numbers and registers bpf/syscall_args.bpf.h knows.
SYSCALL_ARGS_MACHINES = ("x86_64", "aarch64")
#: Kernel functions asked about besides the programs' own (see kernel_features()).
#: Kernel functions that say kfree_skb carries a drop reason (5.17; renamed in 6.11).
DROP_REASON_FUNCTIONS = ("kfree_skb_reason", "sk_skb_reason_drop")
PROBED_FUNCTIONS = (TASK_PT_REGS, *DROP_REASON_FUNCTIONS)


@dataclass(frozen=True)
class KernelFeatures:
    """What the running kernel's BTF offers (injected in tests)."""

    has_tracepoint: Callable[[str], bool]
    has_function: Callable[[str], bool]
    #: The verifier takes BPF atomic exchange (kernel >= 5.12); None: could not be probed.
    atomic_exchange: bool | None = True

    @classmethod
    def from_names(cls, tracepoints: Iterable[str], functions: Iterable[str],
                   atomic_exchange: bool | None = True) -> "KernelFeatures":
        tps, fns = frozenset(tracepoints), frozenset(functions)
        return cls(has_tracepoint=tps.__contains__, has_function=fns.__contains__,
                   atomic_exchange=atomic_exchange)


def missing_for(program: ProgramSpec, features: KernelFeatures) -> list[str]:
    """Kernel names a program needs that this kernel lacks (empty: it can load)."""
    missing = [f"tracepoint {t}" for t in program.needs_tracepoints
               if not features.has_tracepoint(t)]
    missing += [f"function {f}" for f in program.needs_functions
                if not features.has_function(f)]
    return missing


@dataclass(frozen=True)
class HookSetVerdict:
    hook_set: HookSet
    usable: bool
    reason: str


@dataclass(frozen=True)
class HookChoice:
    """The hook sets in the order to try, with why each is or is not a candidate."""

    candidates: tuple[HookSet, ...]
    verdicts: tuple[HookSetVerdict, ...] = field(default=())

    def explain(self) -> list[str]:
        return [f"{v.hook_set.name}: {'usable' if v.usable else 'not usable'} ({v.reason})"
                for v in self.verdicts]


def choose_hook_sets(features: KernelFeatures, requested: str = "auto",
                     hook_sets: tuple[HookSet, ...] = NET_OBJECT.hook_sets) -> HookChoice:
    """Order the byte-hook sets to try on this kernel.

    ``auto`` tries every set whose kernel names all exist, in preference order (tracepoints
    first: they see every send path and need no trampoline). A named set is tried alone,
    whatever the BTF says, so a user can force it and read the loader's error.
    """
    if requested != "auto" and requested not in {s.name for s in hook_sets}:
        raise ValueError(f"unknown hook set {requested!r}")
    verdicts = []
    for hook_set in hook_sets:
        # Usable when its required programs can load; optional ones may be absent.
        missing = [m for p in hook_set.programs if p.required
                   for m in missing_for(p, features)]
        if missing:
            verdicts.append(HookSetVerdict(hook_set, False, "kernel lacks " + ", ".join(missing)))
        else:
            verdicts.append(HookSetVerdict(hook_set, True, "all its hooks exist in kernel BTF"))
    if requested != "auto":
        chosen = tuple(s for s in hook_sets if s.name == requested)
    else:
        chosen = tuple(v.hook_set for v in verdicts if v.usable)
    return HookChoice(candidates=chosen, verdicts=tuple(verdicts))


@dataclass(frozen=True)
class BpfMode:
    """Which BPF features the net programs may use on this kernel, and why.

    Full mode loads net.bpf.o: per-socket state in sk_storage, sockets with a fixed peer
    counted there (socket counters). Kernels before 5.12 lack the atomic exchange those
    counters need, and before 5.11 tracing programs cannot reach sk_storage or get the task as
    a BTF pointer; compat mode loads net_compat.bpf.o, the same source built without them
    (bpf/compat.bpf.h): that state in a hash map keyed by socket address, every socket
    counted through the flow tables, the executable read with probed reads. The atomic
    exchange came last of these, so it alone decides.
    """

    compat: bool
    reason: str

    @property
    def name(self) -> str:
        return "compat" if self.compat else "full"

    def explain(self) -> str:
        return f"{self.name} ({self.reason})"


def choose_bpf_mode(features: KernelFeatures, requested: str = "auto") -> BpfMode:
    """Full mode where the kernel takes BPF atomic exchange, compat mode where it does not.

    A named mode is used as asked (a user can force compat on a new kernel, or full on a
    kernel with backported features); ``auto`` without a probe answer assumes full, so the
    loader's verifier log says what is missing rather than a guess hiding it.
    """
    if requested not in BPF_MODE_CHOICES:
        raise ValueError(f"unknown BPF mode {requested!r}")
    if requested != "auto":
        return BpfMode(requested == "compat", "as configured (sensor.bpf_mode)")
    if features.atomic_exchange is None:
        return BpfMode(False, "BPF atomic exchange could not be probed (not root?); assumed")
    if features.atomic_exchange:
        return BpfMode(False, "the kernel has BPF atomic exchange (5.12+)")
    return BpfMode(True, "the kernel lacks BPF atomic exchange (before 5.12): per-socket "
                         "state in a hash map, no socket counters")


@dataclass(frozen=True)
class PacketHookPlan:
    """How much runs for every packet, and why.

    With ``syscall_args`` the send and receive hooks read their system call's arguments
    (bpf/syscall_args.bpf.h): the destination of a raw or ping send comes from sendto's
    address and DNS answers from the reader's buffer, so neither net_dev_queue nor the
    cgroup_skb DNS program (dns.bpf.o) is loaded. With ``on_demand`` the one per-packet hook
    left (the source of datagrams read by raw and ping sockets) is attached only while such
    a socket exists. Each program run costs ~85 ns here whatever it does, so these decide
    most of the sensor's cost on small packets.
    """

    syscall_args: bool
    on_demand: bool
    reason: str

    def explain(self) -> str:
        reads = ("read from system call arguments" if self.syscall_args
                 else "read from packets (net_dev_queue, dns.bpf.o)")
        when = "attached on demand" if self.on_demand else "always attached"
        return f"peers and DNS {reads}; datagram-source hook {when} ({self.reason})"


def choose_packet_hooks(features: KernelFeatures, mode: BpfMode, requested: str = "auto",
                        machine: str | None = None) -> PacketHookPlan:
    """System call arguments where the kernel and architecture allow; per-packet hooks
    always when asked (``always``), or where they do not."""
    if requested not in PACKET_HOOK_CHOICES:
        raise ValueError(f"unknown packet hook choice {requested!r}")
    if requested == "always":
        return PacketHookPlan(False, False, "as configured (sensor.packet_hooks = always)")
    machine = machine or os.uname().machine
    if mode.compat:
        reason = "compat BPF mode: the kernel lacks bpf_task_pt_regs() (5.15)"
    elif machine not in SYSCALL_ARGS_MACHINES:
        reason = f"no system call table for {machine}"
    elif not features.has_function(TASK_PT_REGS):
        reason = "the kernel lacks bpf_task_pt_regs() (5.15)"
    else:
        return PacketHookPlan(True, True, "the kernel has bpf_task_pt_regs() (5.15+)")
    return PacketHookPlan(False, True, reason)


def objects_for(plan: PacketHookPlan, scan: bool = True) -> tuple[ObjectSpec, ...]:
    """The objects a sensor with this plan loads: dns.bpf.o only where the receive hook
    cannot read DNS answers itself; scan.bpf.o unless scan detection is off."""
    return tuple(spec for spec in OBJECTS if not (spec is DNS_OBJECT and plan.syscall_args)
                 and not (spec is SCAN_OBJECT and not scan))


def has_drop_reason(features: KernelFeatures) -> bool:
    """kfree_skb says why a packet was dropped (5.17+)."""
    return any(features.has_function(f) for f in DROP_REASON_FUNCTIONS)
