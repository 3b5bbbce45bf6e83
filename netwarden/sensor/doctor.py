"""`netwarden doctor`: what this kernel supports, which hooks are chosen and why, and whether
they count (a self-test sends known bytes over loopback and checks what was attributed)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from netwarden.config import Config
from netwarden.sensor import hooks


@dataclass
class DoctorReport:
    kernel: str
    btf: bool
    root: bool
    cgroup2: str
    hook_sets: list[str] = field(default_factory=list)
    chosen: str = ""
    bpf_mode: str = ""          # "full" or "compat" (see hooks.BpfMode)
    bpf_mode_reason: str = ""
    net_object: str = ""        # the file that mode loads
    packet_hooks: str = ""      # hooks.PacketHookPlan.explain()
    programs: list[dict[str, object]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    loaded: bool | None = None
    self_test: str = ""
    self_test_ok: bool | None = None
    remote_sink: str = ""       # the off-host copy's state and lag ("" when not configured)

    @property
    def ok(self) -> bool:
        return bool(self.chosen) and self.self_test_ok is not False and not any(
            p.get("required") and p.get("failed") for p in self.programs)

    def as_dict(self) -> dict[str, object]:
        return {"kernel": self.kernel, "btf": self.btf, "root": self.root,
                "cgroup2": self.cgroup2, "hook_sets": self.hook_sets, "chosen": self.chosen,
                "bpf_mode": self.bpf_mode, "bpf_mode_reason": self.bpf_mode_reason,
                "net_object": self.net_object, "packet_hooks": self.packet_hooks,
                "load_tested": self.loaded is not None, "programs": self.programs,
                "self_test": self.self_test, "self_test_ok": self.self_test_ok,
                "problems": self.problems, "remote_sink": self.remote_sink, "ok": self.ok}

    def render(self) -> str:
        lines = [f"kernel       {self.kernel}",
                 f"kernel BTF   {'present' if self.btf else 'MISSING (/sys/kernel/btf/vmlinux)'}",
                 f"root         {'yes' if self.root else 'no (cannot test loading)'}",
                 f"cgroup2      {self.cgroup2 or 'not mounted'}",
                 "hook sets:"]
        lines += [f"  {line}" for line in self.hook_sets]
        if self.loaded is not None:
            lines.append(f"chosen       {self.chosen or 'none'} (loaded and attached here)")
        else:
            lines.append(f"would choose {self.chosen or 'none'} (from kernel BTF; not loaded)")
        if self.bpf_mode:
            lines.append(f"BPF mode     {self.bpf_mode}: {self.net_object} "
                         f"({self.bpf_mode_reason})")
        if self.packet_hooks:
            lines.append(f"packet hooks {self.packet_hooks}")
        if self.programs:
            lines.append("programs:")
            for p in self.programs:
                detail = f" - {p['detail']}" if p["detail"] else ""
                tag = " (required)" if p["required"] else ""
                lines.append(f"  {p['object']}/{p['program']}: {p['state']}{tag}{detail}")
        if self.self_test_ok is not None:
            lines.append(f"self-test    {'PASS' if self.self_test_ok else 'FAIL'}: "
                         f"{self.self_test} bytes attributed")
        if self.remote_sink:
            lines.append(f"remote sink  {self.remote_sink}")
        lines += [f"problem: {p}" for p in self.problems]
        lines.append("verdict      " + ("OK" if self.ok else "NOT OK: bytes cannot be counted"))
        return "\n".join(lines)


def describe_remote_sink(config: Config) -> str:
    """One line on the off-host copy, from the sink's status file (no driver is loaded)."""
    if not config.remote.url:
        return ""
    from pathlib import Path

    from netwarden.store.sink_state import read_status
    from netwarden.store.sqlite_db import StoreUnavailable
    try:
        status = read_status(Path(config.remote.state_path))
    except StoreUnavailable as exc:
        return f"status unreadable: {exc}"
    if status is None:
        return (f"configured ({config.remote.state_path} missing): the sink has not run; "
                "systemctl enable --now netwarden-sink")
    line = (f"{status.state}, {status.behind_rows} rows / {status.behind_s:.0f} s behind, "
            f"to {status.target}")
    return line + (f"; last error: {status.error}" if status.error else "")


def run_doctor(config: Config, try_load: bool = True) -> DoctorReport:
    from netwarden.sensor.loader import (
        LoadFailure, Loader, ObjectConfig, cgroup2_root, kernel_features,
    )
    from netwarden.sensor.selftest import run_self_test
    from netwarden.sensor.scan import scan_object_config
    report = DoctorReport(kernel=os.uname().release,
                          btf=os.path.exists("/sys/kernel/btf/vmlinux"),
                          root=os.geteuid() == 0, cgroup2="")
    report.remote_sink = describe_remote_sink(config)
    try:
        report.cgroup2 = cgroup2_root()
    except OSError as exc:
        report.problems.append(str(exc))
    if not report.btf:
        report.problems.append("no kernel BTF: CO-RE programs cannot load on this kernel")
        return report
    features = kernel_features(hooks.OBJECTS)
    choice = hooks.choose_hook_sets(features, config.sensor.hook_set)
    report.hook_sets = choice.explain()
    report.chosen = choice.candidates[0].name if choice.candidates else ""
    mode = hooks.choose_bpf_mode(features, config.sensor.bpf_mode)
    report.bpf_mode, report.bpf_mode_reason = mode.name, mode.reason
    report.net_object = hooks.NET_OBJECT.filename_for(mode)
    plan = hooks.choose_packet_hooks(features, mode, config.sensor.packet_hooks)
    report.packet_hooks = plan.explain()
    if not (try_load and report.root):
        return report
    loader = Loader(features, report.cgroup2 or None, mode=mode, packet_hooks=plan)
    report.loaded = True
    report.chosen = ""
    for spec in hooks.objects_for(plan, config.scan.enabled):
        settings = (scan_object_config(config.scan, features) if spec is hooks.SCAN_OBJECT
                    else ObjectConfig())
        try:
            loaded = loader.load(spec, settings, choice if spec.hook_sets else None)
        except LoadFailure as exc:
            report.problems.append(str(exc))
            continue
        try:
            if loaded.hook_set is not None:
                report.chosen = loaded.hook_set.name
            report.programs += [{"object": s.object_name, "program": s.program,
                                 "state": s.state.value, "required": s.required,
                                 "failed": s.is_failure, "detail": s.detail}
                                for s in loaded.statuses]
            if spec is hooks.NET_OBJECT:
                result = run_self_test(loaded)
                report.self_test, report.self_test_ok = result.summary(), result.ok
        finally:
            loaded.close()
    return report
