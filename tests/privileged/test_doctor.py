"""`netwarden doctor` on this kernel: the hook set, why, and a self-test that counts."""

from __future__ import annotations

import json
import os
import re

from tests.support.sensor_proc import netwarden


def kernel_version() -> tuple[int, int]:
    major, minor = (int(x) for x in re.findall(r"\d+", os.uname().release)[:2])
    return major, minor


def expected_hook_set() -> str:
    """The length tracepoints arrived in 6.3; older kernels (the kernel matrix) take fexit."""
    return "tracepoint" if kernel_version() >= (6, 3) else "fexit"


def expected_bpf_mode() -> str:
    """BPF atomic exchange arrived in 5.12; older kernels (5.10 in the matrix) take compat."""
    return "full" if kernel_version() >= (5, 12) else "compat"


def test_doctor_loads_chooses_and_counts():
    done = netwarden("doctor", "--json")
    report = json.loads(done.stdout)
    chosen = expected_hook_set()
    assert report["ok"] is True and report["load_tested"] is True
    assert report["chosen"] == chosen
    assert any(h.startswith(f"{chosen}: usable") for h in report["hook_sets"])
    assert report["bpf_mode"] == expected_bpf_mode() and report["bpf_mode_reason"]
    assert report["net_object"] == ("net.bpf.o" if expected_bpf_mode() == "full"
                                    else "net_compat.bpf.o")
    assert report["self_test_ok"] is True
    assert "tcp sent 400000/400000" in report["self_test"]
    assert "udp received 28000/28000" in report["self_test"]
    states = {p["program"]: p["state"] for p in report["programs"]}
    attached, idle = "tp_sock_send_length", "fexit_inet_sendmsg"
    if chosen == "fexit":
        attached, idle = idle, attached
    assert states[attached] == "attached"
    assert states[idle] == "not selected"
    for iterator in ("iter_drain_tcp", "iter_drain_udp"):
        assert states[iterator] == ("attached" if expected_bpf_mode() == "full"
                                    else "not selected")


def test_doctor_without_loading_reads_btf_only():
    report = json.loads(netwarden("doctor", "--json", "--no-load").stdout)
    assert report["load_tested"] is False and report["self_test_ok"] is None
    assert report["chosen"] == expected_hook_set()
    assert report["bpf_mode"] == expected_bpf_mode()
