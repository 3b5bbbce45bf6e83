"""Hook-set choice for kernels this machine cannot boot (features as BTF would report them)."""

from __future__ import annotations

import pytest

from netwarden.sensor.hooks import KernelFeatures, choose_hook_sets

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
