"""The loader on this kernel: hook fallback, optional programs failing alone, the registry."""

from __future__ import annotations

import dataclasses

import pytest

from netwarden.sensor import hooks
from netwarden.sensor.hooks import AttachKind, BpfMode, HookChoice, ProgramSpec
from netwarden.sensor.loader import (
    LoadFailure, Loader, ObjectConfig, ProgramState, cgroup2_root, kernel_features,
)
from netwarden.sensor.selftest import run_self_test


@pytest.fixture(scope="module")
def loader() -> Loader:
    return Loader(kernel_features(hooks.OBJECTS), cgroup2_root())


def test_auto_choice_on_this_kernel_loads_the_tracepoint_set(loader: Loader):
    features = kernel_features(hooks.OBJECTS)
    loaded = loader.load(hooks.NET_OBJECT, ObjectConfig(), hooks.choose_hook_sets(features))
    try:
        assert loaded.hook_set is hooks.TRACEPOINT_SET
        states = {s.program: s.state for s in loaded.statuses}
        assert states["tp_sock_send_length"] is ProgramState.ATTACHED
        assert states["fexit_inet_sendmsg"] is ProgramState.NOT_SELECTED
        # Full mode counts TCP reads without tcp_rcv_space_adjust (compat mode's way).
        assert states["tp_tcp_rcv_space_adjust"] is ProgramState.NOT_SELECTED
        assert all(s.state is ProgramState.ATTACHED for s in loaded.statuses
                   if s.program not in hooks.FEXIT_SET.program_names
                   and s.program != "tp_tcp_rcv_space_adjust")
    finally:
        loaded.close()


def test_the_auto_packet_hook_plan_leaves_per_packet_hooks_out():
    """With system call arguments readable (this kernel has bpf_task_pt_regs), nothing runs
    for every packet: net_dev_queue is not loaded, the datagram-source hook is loaded but
    attached only on demand, and attaching and detaching it works."""
    features = kernel_features(hooks.OBJECTS)
    mode = hooks.choose_bpf_mode(features)
    plan = hooks.choose_packet_hooks(features, mode)
    assert plan.syscall_args and plan.on_demand, plan
    loader = Loader(features, cgroup2_root(), mode=mode, packet_hooks=plan)
    loaded = loader.load(hooks.NET_OBJECT, ObjectConfig(), hooks.choose_hook_sets(features))
    try:
        states = {s.program: s.state for s in loaded.statuses}
        assert states["tp_net_dev_queue"] is ProgramState.NOT_SELECTED
        assert states["tp_skb_copy_datagram_iovec"] is ProgramState.ON_DEMAND
        assert not loaded.is_linked("tp_skb_copy_datagram_iovec")
        loaded.attach_on_demand("tp_skb_copy_datagram_iovec")
        assert loaded.is_linked("tp_skb_copy_datagram_iovec")
        loaded.detach_on_demand("tp_skb_copy_datagram_iovec")
        assert not loaded.is_linked("tp_skb_copy_datagram_iovec")
        result = run_self_test(loaded)
        assert result.ok, result.summary()
    finally:
        loaded.close()


def test_a_set_that_fails_to_load_falls_back_to_the_next(loader: Loader):
    """fexit is refused here (it needs a trampoline this sandbox denies): listed first, it
    must fail and the tracepoint set take over."""
    choice = HookChoice(candidates=(hooks.FEXIT_SET, hooks.TRACEPOINT_SET))
    loaded = loader.load(hooks.NET_OBJECT, ObjectConfig(), choice)
    try:
        assert loaded.hook_set is hooks.TRACEPOINT_SET
    finally:
        loaded.close()


def test_only_an_unusable_set_is_a_load_failure_with_reasons(loader: Loader):
    with pytest.raises(LoadFailure) as info:
        loader.load(hooks.NET_OBJECT, ObjectConfig(), HookChoice(candidates=(hooks.FEXIT_SET,)))
    message = str(info.value)
    assert "fexit_inet_" in message and "Operation not permitted" in message


def test_an_optional_program_that_fails_to_load_is_left_out(loader: Loader):
    """Treat an fexit receive hook as an optional extra: it fails here, the rest loads."""
    broken = ProgramSpec("fexit_inet_recvmsg", AttachKind.AUTO, purpose="test")
    rest_of_fexit = dataclasses.replace(hooks.FEXIT_SET, programs=tuple(
        p for p in hooks.FEXIT_SET.programs if p.name != broken.name))
    spec = dataclasses.replace(hooks.NET_OBJECT,
                               programs=hooks.NET_OBJECT.programs + (broken,),
                               hook_sets=(hooks.TRACEPOINT_SET, rest_of_fexit))
    loaded = loader.load(spec, ObjectConfig(), HookChoice(candidates=(hooks.TRACEPOINT_SET,)))
    try:
        status = next(s for s in loaded.statuses if s.program == broken.name)
        assert status.state is ProgramState.LOAD_FAILED and not status.required
        assert status.detail
        assert loaded.hook_set is hooks.TRACEPOINT_SET
    finally:
        loaded.close()


def test_a_name_missing_from_the_object_fails_loudly(loader: Loader):
    spec = dataclasses.replace(hooks.EXEC_OBJECT, maps=hooks.EXEC_OBJECT.maps + ("no_such_map",))
    with pytest.raises(OSError, match="no_such_map"):
        loader.load(spec, ObjectConfig())


def test_read_only_globals_and_map_sizes_are_applied(loader: Loader):
    loaded = loader.load(hooks.EXEC_OBJECT, ObjectConfig(
        rodata={"wakeup_backlog_bytes": 4096}, map_entries={"proc_events": 1 << 16}))
    try:
        import subprocess
        maps = subprocess.run(["bpftool", "map", "show", "name", "proc_events"],
                              capture_output=True, text=True).stdout
        assert "max_entries 65536" in maps
    finally:
        loaded.close()


def test_compat_mode_loads_and_counts_here_too():
    """The pre-5.12 programs (the kernel matrix runs them on 5.10 and its fexit hooks) must
    count on this kernel too, with the hook set it chooses."""
    features = kernel_features(hooks.OBJECTS)
    loader = Loader(features, cgroup2_root(), mode=BpfMode(True, "forced by the test"))
    loaded = loader.load(hooks.NET_OBJECT, ObjectConfig(), hooks.choose_hook_sets(features))
    try:
        states = {s.program: s.state for s in loaded.statuses}
        assert states["iter_drain_tcp"] is ProgramState.NOT_SELECTED
        assert states["iter_drain_udp"] is ProgramState.NOT_SELECTED
        assert states["cg_sock_release"] is ProgramState.ATTACHED
        assert states["tp_tcp_rcv_space_adjust"] is ProgramState.ATTACHED
        assert loaded.bpf_mode is not None and loaded.bpf_mode.compat
        result = run_self_test(loaded)
        assert result.ok, result.summary()
    finally:
        loaded.close()
