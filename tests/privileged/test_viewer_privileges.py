"""Viewers never run as root: started as root they refuse, or become --user before reading."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sensor_proc import netwarden_cmd
from tests.support.units import (
    UNITS_DIR, allowed_syscalls, sandbox_prefix, stop_traced, strace_prefix, traced_syscalls,
)
from tests.support.viewer_data import seed_store
from tests.support.viewer_proc import (
    REPO, VIEWER_USER, share, start_dash, tmux_pane, viewer_args, viewer_dir, viewer_port,
)

NOBODY = pwd.getpwnam(VIEWER_USER)


@pytest.fixture(scope="module")
def store() -> Iterator[Path]:
    with viewer_dir("nwv-priv-") as directory:
        seed_store(directory / "nw.db", int(time.time()))
        share(directory / "nw.db")
        yield directory / "nw.db"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(netwarden_cmd(*args), capture_output=True, text=True, timeout=60,
                          cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))


@pytest.mark.parametrize("viewer", ["tui", "dash"])
def test_root_without_user_is_refused(store: Path, viewer: str):
    port = ["--port", str(viewer_port(29))] if viewer == "dash" else []
    done = run(viewer, "--db", str(store), *port)
    assert done.returncode == 77
    assert "viewers do not run as root" in done.stderr and "--user NAME" in done.stderr


@pytest.mark.parametrize("user, status, message", [
    ("no-such-user-nwv", 67, "no such user"), ("root", 77, "that is root")])
def test_bad_users_are_refused(store: Path, user: str, status: int, message: str):
    done = run("tui", "--db", str(store), "--user", user)
    assert done.returncode == status and message in done.stderr


def ids_of(pid: int) -> tuple[list[int], list[int], list[int]]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return ([int(x) for x in fields["Uid"].split()], [int(x) for x in fields["Gid"].split()],
            [int(x) for x in fields["Groups"].split()])


def test_dash_drops_to_the_user_before_serving(store: Path):
    server = start_dash(store, viewer_port(21), store.parent, "[dash]\nrefresh_s = 0\n")
    try:
        uids, gids, groups = ids_of(server.proc.pid)
        assert set(uids) == {NOBODY.pw_uid} and set(gids) == {NOBODY.pw_gid}
        assert 0 not in groups
        status = Path(f"/proc/{server.proc.pid}/status").read_text()
        assert "NoNewPrivs:\t1" in status
        with urllib.request.urlopen(server.url + "/api/v1/flows?group=exe", timeout=20) as r:
            assert len(json.loads(r.read())["rows"]) == 4
    finally:
        server.stop()


def test_the_dropped_viewer_cannot_read_what_its_user_may_not(store: Path):
    private = store.parent / "private.db"
    seed_store(private, int(time.time()))
    os.chmod(private, 0o600)
    server = start_dash(private, viewer_port(22), store.parent, "[dash]\nrefresh_s = 0\n")
    try:
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(server.url + "/api/v1/flows", timeout=20)
        assert info.value.code == 503
        assert "permission denied" in json.loads(info.value.read())["error"]
    finally:
        server.stop()


def test_tui_runs_as_the_user(store: Path):
    with tmux_pane("tuipriv") as pane:
        pane.start(viewer_args("tui", "--db", str(store)), env={"TZ": "UTC"})
        pane.wait_for("/usr/bin/curl")
        pane_pid = int(pane.tmux("display", "-p", "-t", pane.session, "#{pane_pid}"))
        children = subprocess.run(["pgrep", "-P", str(pane_pid)], capture_output=True,
                                  text=True).stdout.split()
        uids = [ids_of(int(child))[0] for child in children]
        assert [set(u) for u in uids] == [{NOBODY.pw_uid}]
        pane.keys("q")
        pane.wait_for("EXITED 0")


def test_a_viewer_module_imported_as_root_stops_the_drop():
    code = ("import plotly, sys\n"
            "from netwarden.privileges import PrivilegeError, become_unprivileged\n"
            "try:\n"
            "    become_unprivileged('netwarden dash', sys.argv[1])\n"
            "except PrivilegeError as exc:\n"
            "    print(exc.status, exc)\n")
    done = subprocess.run([sys.executable, "-c", code, VIEWER_USER], check=False,
                          capture_output=True, text=True, timeout=60, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.stdout.strip() == ("77 netwarden dash: plotly imported while root; "
                                   "refusing to go on"), done.stderr


def test_dash_serves_with_exactly_its_units_privileges(store: Path):
    """systemd/netwarden-dash.service's user (nobody stands in for netwarden-view), empty
    bounding set, no_new_privs and MemoryDenyWriteExecute: Dash, Flask and pandas still serve,
    making only the system calls the unit's SystemCallFilter allows (strace records them)."""
    unit = UNITS_DIR / "netwarden-dash.service"
    port = viewer_port(41)
    config = store.parent / "dash-unit.toml"
    config.write_text("[dash]\nrefresh_s = 0\n")
    os.chmod(config, 0o644)
    log, trace = store.parent / "dash-unit.log", store.parent / "dash-unit.strace"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*sandbox_prefix(unit, account=NOBODY), *strace_prefix(trace),
             sys.executable, "-m", "netwarden", "dash",
             "--db", str(store), "--config", str(config), "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, cwd="/",
            env=dict(os.environ, PYTHONPATH=str(REPO), TZ="UTC"))
    try:
        deadline = time.time() + 60
        while "serving http" not in log.read_text():
            assert proc.poll() is None, f"dash exited {proc.returncode}: {log.read_text()}"
            assert time.time() < deadline, log.read_text()
            time.sleep(0.2)
        dash_pid = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text())
        status = Path(f"/proc/{dash_pid}/status").read_text()
        assert "CapBnd:\t0000000000000000" in status and "NoNewPrivs:\t1" in status
        assert ids_of(dash_pid)[0] == [NOBODY.pw_uid] * 4
        url = f"http://127.0.0.1:{port}/api/v1/flows?group=exe"
        with urllib.request.urlopen(url, timeout=20) as response:
            assert len(json.loads(response.read())["rows"]) == 4
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20) as response:
            assert response.status == 200
    finally:
        stop_traced(proc)
    used = traced_syscalls(trace)
    assert not used - allowed_syscalls(unit), sorted(used - allowed_syscalls(unit))
