"""Hook-set choice for kernels this machine cannot boot (features as BTF would report them)."""

from __future__ import annotations

import pytest

from netwarden.sensor.hooks import (
    DNS_OBJECT,
    NET_OBJECT,
    OBJECTS,
    KernelFeatures,
    choose_bpf_mode,
    choose_hook_sets,
    choose_packet_hooks,
    objects_for,
)

TPS = ("sock_send_length", "sock_recv_length", "tcp_rcv_space_adjust",
       "skb_copy_datagram_iovec", "net_dev_queue")

INET = ("inet_sendmsg", "inet_recvmsg", "inet6_sendmsg", "inet6_recvmsg")
KERNELS = {
    # name: (tracepoints, functions, expected order)
    "6.18 (this host)": (TPS, INET, ["tracepoint", "fexit"]),
    "6.12": (TPS, INET, ["tracepoint", "fexit"]),
    "6.1": (TPS[2:], INET + ("inet_sendpage", "packet_sendmsg", "packet_recvmsg"), ["fexit"]),
    "5.10": (TPS[2:], INET + ("inet_sendpage",), ["fexit"]),
    "no IPv6 built in": (TPS[2:], INET[:2], ["fexit"]),   # optional programs may be missing
    "neither": (TPS[2:], ("inet6_sendmsg",), []),
}


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_auto_order(kernel: str):
    tracepoints, functions, expected = KERNELS[kernel]
    choice = choose_hook_sets(KernelFeatures.from_names(tracepoints, functions))
    assert [s.name for s in choice.candidates] == expected


def test_explain_names_what_is_missing():
    tracepoints, functions, _ = KERNELS["6.1"]
    lines = choose_hook_sets(KernelFeatures.from_names(tracepoints, functions)).explain()
    assert lines[0] == ("tracepoint: not usable (kernel lacks tracepoint sock_send_length, "
                        "tracepoint sock_recv_length)")
    assert lines[1] == "fexit: usable (all its hooks exist in kernel BTF)"
    lines = choose_hook_sets(KernelFeatures.from_names(TPS[2:], ("inet6_sendmsg",))).explain()
    assert lines[1] == ("fexit: not usable (kernel lacks function inet_sendmsg, "
                        "function inet_recvmsg)")


def test_a_forced_set_is_tried_even_when_btf_says_no():
    tracepoints, functions, _ = KERNELS["6.18 (this host)"]
    choice = choose_hook_sets(KernelFeatures.from_names(tracepoints, functions), "fexit")
    assert [s.name for s in choice.candidates] == ["fexit"]


def test_unknown_set_is_refused():
    with pytest.raises(ValueError, match="kprobe"):
        choose_hook_sets(KernelFeatures.from_names((), ()), "kprobe")


#: Does the kernel's verifier take BPF atomic exchange (5ffa25502b5a, 5.12)? As probed.
ATOMIC_EXCHANGE = {"6.18 (this host)": True, "6.12": True, "6.1": True, "5.10": False}


@pytest.mark.parametrize("kernel", sorted(ATOMIC_EXCHANGE))
def test_bpf_mode_follows_the_atomic_exchange_probe(kernel: str):
    tracepoints, functions, _ = KERNELS[kernel]
    features = KernelFeatures.from_names(tracepoints, functions, ATOMIC_EXCHANGE[kernel])
    mode = choose_bpf_mode(features)
    assert mode.name == ("full" if ATOMIC_EXCHANGE[kernel] else "compat")
    assert mode.compat is (not ATOMIC_EXCHANGE[kernel])


def test_bpf_mode_says_why():
    features = KernelFeatures.from_names(*KERNELS["5.10"][:2], atomic_exchange=False)
    assert choose_bpf_mode(features).explain() == (
        "compat (the kernel lacks BPF atomic exchange (before 5.12): per-socket state in a "
        "hash map, no socket counters)")
    unknown = KernelFeatures.from_names((), (), atomic_exchange=None)
    assert choose_bpf_mode(unknown).name == "full"
    assert "could not be probed" in choose_bpf_mode(unknown).reason


def test_a_configured_bpf_mode_wins_over_the_probe():
    features = KernelFeatures.from_names((), (), atomic_exchange=True)
    assert choose_bpf_mode(features, "compat").compat is True
    assert choose_bpf_mode(KernelFeatures.from_names((), (), False), "full").compat is False
    with pytest.raises(ValueError, match="partial"):
        choose_bpf_mode(features, "partial")


def test_only_socket_counter_programs_are_full_mode_only():
    """Compat mode leaves out what needs atomic exchange (the socket counters: their drain
    iterators, and the generation hooks of their slots); every other program still loads."""
    full_only = [p.name for p in NET_OBJECT.programs if p.full_mode_only]
    assert full_only == ["iter_drain_tcp", "iter_drain_udp", "tp_owner_task_new",
                         "tp_owner_exec"]
    assert NET_OBJECT.filename_for(choose_bpf_mode(KernelFeatures.from_names(
        (), (), atomic_exchange=False))) == "net_compat.bpf.o"
    assert NET_OBJECT.filename_for(choose_bpf_mode(KernelFeatures.from_names((), ()))) \
        == "net.bpf.o"


# ---- how much runs per packet (PacketHookPlan) ----

PT_REGS = ("bpf_task_pt_regs",)


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_system_call_arguments_where_kernel_and_machine_allow(machine: str):
    features = KernelFeatures.from_names(TPS, INET + PT_REGS)
    plan = choose_packet_hooks(features, choose_bpf_mode(features), machine=machine)
    assert plan.syscall_args and plan.on_demand
    assert "bpf_task_pt_regs() (5.15+)" in plan.explain()


def test_no_system_call_arguments_without_the_helper_or_the_table():
    old = KernelFeatures.from_names(TPS[2:], INET)                 # 5.14 and older
    plan = choose_packet_hooks(old, choose_bpf_mode(old), machine="x86_64")
    assert not plan.syscall_args and plan.on_demand
    assert "lacks bpf_task_pt_regs" in plan.reason
    new = KernelFeatures.from_names(TPS, INET + PT_REGS)
    plan = choose_packet_hooks(new, choose_bpf_mode(new), machine="riscv64")
    assert not plan.syscall_args and "riscv64" in plan.reason
    compat = choose_bpf_mode(KernelFeatures.from_names(TPS, INET + PT_REGS, False))
    assert not choose_packet_hooks(new, compat, machine="x86_64").syscall_args


def test_always_keeps_every_per_packet_hook():
    features = KernelFeatures.from_names(TPS, INET + PT_REGS)
    plan = choose_packet_hooks(features, choose_bpf_mode(features), "always", "x86_64")
    assert not plan.syscall_args and not plan.on_demand
    assert objects_for(plan) == OBJECTS
    auto = choose_packet_hooks(features, choose_bpf_mode(features), "auto", "x86_64")
    assert DNS_OBJECT not in objects_for(auto)
    with pytest.raises(ValueError, match="sometimes"):
        choose_packet_hooks(features, choose_bpf_mode(features), "sometimes")
