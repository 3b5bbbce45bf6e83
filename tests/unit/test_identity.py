"""Process identity from a fixture /proc tree (ProcFs root injected)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netwarden.sensor import bpf_records as rec
from netwarden.sensor.collectors import ProcessEvent
from netwarden.sensor.identity import ProcessTable, ProcFs


class FakeProc:
    def __init__(self, root: Path) -> None:
        self.root = root

    def add(self, pid: int, exe: Path, cmdline: list[str], ppid: int = 1, uid: int = 1000,
            name: str = "") -> None:
        d = self.root / str(pid)
        d.mkdir(parents=True)
        (d / "exe").symlink_to(exe)
        (d / "cwd").symlink_to(exe.parent)
        (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in cmdline) + b"\0")
        (d / "status").write_text(f"Name:\t{name or exe.name}\nPPid:\t{ppid}\n"
                                  f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
        (d / "stat").write_text("x")

    def remove(self, pid: int) -> None:
        import shutil
        shutil.rmtree(self.root / str(pid))


@pytest.fixture
def env(tmp_path: Path):
    bins = tmp_path / "bin"
    bins.mkdir()
    for name in ("curl", "bash", "python3"):
        (bins / name).write_bytes(name.encode() * 100)
    script = bins / "tool.py"
    script.write_text("#!/usr/bin/python3\nprint()\n")
    proc = FakeProc(tmp_path / "proc")
    proc.root.mkdir()
    seen = []
    table = ProcessTable(ProcFs(str(proc.root)), on_new_exe=seen.append,
                         clock=lambda: 1000.0, exit_grace_s=10)
    return bins, proc, table, seen


def ident(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def exec_event(pid: int, exe: Path, filename: str, argv: tuple[str, ...], ppid: int = 1,
               kind: int = rec.PROC_EXEC) -> ProcessEvent:
    dev, ino = ident(exe)
    return ProcessEvent(kind=kind, pid=pid, ppid=ppid, uid=1000, exe_dev=dev, exe_ino=ino,
                        start_time_ns=5, comm=exe.name[:15], filename=filename, argv=argv,
                        argv_truncated=False)


def test_exec_of_a_live_process(env):
    bins, proc, table, seen = env
    proc.add(10, bins / "curl", ["curl", "-s", "x"])
    table.on_event(exec_event(10, bins / "curl", str(bins / "curl"), ("curl", "-s", "x")))
    record = table.lookup(10, *ident(bins / "curl"))
    assert record.exe.path == str(bins / "curl")
    assert record.cmdline == "curl -s x" and record.script is None
    assert [r.path for r in seen] == [str(bins / "curl")]


def test_exec_of_a_process_already_gone_uses_the_exec_filename(env):
    bins, proc, table, _ = env
    table.on_event(exec_event(11, bins / "curl", str(bins / "curl"), ("curl",)))
    assert table.lookup(11, *ident(bins / "curl")).exe.path == str(bins / "curl")


def test_relative_exec_resolved_against_the_parent_cwd(env):
    bins, proc, table, _ = env
    proc.add(1, bins / "bash", ["bash"])          # its cwd is bins/
    table.on_event(exec_event(12, bins / "curl", "./curl", ("./curl",), ppid=1))
    assert table.lookup(12, *ident(bins / "curl")).exe.path == str(bins / "curl")


def test_script_records_interpreter_and_script(env):
    bins, proc, table, seen = env
    proc.add(13, bins / "python3", ["python3", str(bins / "tool.py")])
    table.on_event(exec_event(13, bins / "python3", str(bins / "tool.py"),
                              ("/usr/bin/python3", str(bins / "tool.py"))))
    record = table.lookup(13, *ident(bins / "python3"))
    assert record.exe.path == str(bins / "python3")
    assert record.script is not None and record.script.path == str(bins / "tool.py")
    assert {r.path for r in seen} == {str(bins / "python3"), str(bins / "tool.py")}


def test_fork_inherits_and_exit_expires(env):
    bins, proc, table, _ = env
    proc.add(20, bins / "curl", ["curl"])
    table.on_event(exec_event(20, bins / "curl", str(bins / "curl"), ("curl",)))
    table.on_event(exec_event(21, bins / "curl", "", (), ppid=20, kind=rec.PROC_FORK))
    child = table.lookup(21, *ident(bins / "curl"))
    assert (child.exe.path, child.ppid) == (str(bins / "curl"), 20)
    table.on_event(exec_event(21, bins / "curl", "", (), kind=rec.PROC_EXIT))
    assert table.expire() == 0           # within the grace period
    table._clock = lambda: 1011.0        # type: ignore[method-assign]
    assert table.expire() == 1


def test_process_that_predates_the_sensor_is_read_from_proc(env):
    bins, proc, table, _ = env
    proc.add(30, bins / "bash", ["bash", "-l"], ppid=1, uid=0)
    proc.add(31, bins / "curl", ["curl", "y"], ppid=30)
    record = table.lookup(31, *ident(bins / "curl"))
    parent, grandparent = table.ancestors(record)
    assert (record.cmdline, record.uid) == ("curl y", 1000)
    assert parent is not None and parent.exe.path == str(bins / "bash")
    assert grandparent is not None  # pid 1: the fixture has none, so a placeholder


def test_vanished_process_with_unknown_inode_is_labelled(env):
    _, _, table, _ = env
    record = table.lookup(40, 2049, 999999)
    assert record.exe.path == "[unknown 8:1 inode 999999]"
    assert table.lookup(41, 0, 0).exe.path == "[kernel]"
