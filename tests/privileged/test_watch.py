"""The connectivity watch against real servers in a test namespace (issue 23, point 1).

The watch runs as `nobody` (no capabilities) in a client namespace whose ping_group_range
admits nobody's group, so ICMP goes through ping sockets. The server namespace has an HTTP
server, a TCP listener, a DNS server and answers pings. Taking one down gives one
target_down after K failures and one target_up when it returns, with the outage window in
the store; a target outside its schedule is never probed; a group is down only when all its
members are.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.processes import stop_process
from tests.support.watch_net import DNS_PORT, HTTP_PORT, REPO, SERVER_IP, TCP_PORT, WatchNet

NOBODY = pwd.getpwnam("nobody")
INTERVAL, TIMEOUT, FAIL_AFTER, RECOVER_AFTER = 0.3, 0.25, 3, 2


@pytest.fixture
def net() -> Iterator[WatchNet]:
    lan = WatchNet()
    lan.create()
    try:
        for name in ("http", "tcp", "dns"):
            lan.start(name)
        yield lan
    finally:
        lan.delete()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="nwtest-watch-"))
    os.chmod(path, 0o755)
    os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _not_today() -> str:
    """A schedule that excludes now: tomorrow, all day."""
    tomorrow = (dt.datetime.now().astimezone().weekday() + 1) % 7
    return ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[tomorrow] + " 00:00-24:00"


def write_config(directory: Path, extra: str = "") -> Path:
    targets = [("web", f"http://{SERVER_IP}:{HTTP_PORT}/", ""),
               ("ping", f"icmp:{SERVER_IP}", ""),
               ("ssh", f"tcp:{SERVER_IP}:{TCP_PORT}", "internet"),
               ("resolver", f"dns:watch.test@{SERVER_IP}:{DNS_PORT}", "internet")]
    text = (f'[store]\npath = "{directory / "nw.db"}"\ngroup = ""\nowner = ""\n{extra}'
            f"[watch]\ninterval_s = {INTERVAL}\ntimeout_s = {TIMEOUT}\n"
            f"fail_after = {FAIL_AFTER}\nrecover_after = {RECOVER_AFTER}\n")
    for name, probe, group in targets:
        text += f'[[watch.target]]\nname = "{name}"\nprobe = "{probe}"\ngroup = "{group}"\n'
    text += (f'[[watch.target]]\nname = "night"\nprobe = "icmp:{SERVER_IP}"\n'
             f'schedule = "{_not_today()}"\n')
    path = directory / "config.toml"
    path.write_text(text)
    os.chmod(path, 0o644)
    return path


def as_nobody(net: WatchNet, *args: str) -> list[str]:
    """`python -m netwarden ARGS` in the client namespace as nobody, without capabilities."""
    return [*net.in_client(), "setpriv", f"--reuid={NOBODY.pw_uid}",
            f"--regid={NOBODY.pw_gid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", sys.executable, "-m", "netwarden", *args]


def start_as_nobody(net: WatchNet, *args: str) -> subprocess.Popen[str]:
    # Ping sockets for nobody's group, in the client namespace only.
    subprocess.run([*net.in_client(), "sysctl", "-q",
                    f"net.ipv4.ping_group_range={NOBODY.pw_gid} {NOBODY.pw_gid}"], check=True)
    return subprocess.Popen(as_nobody(net, *args), cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO),
                                 "PYTHONDONTWRITEBYTECODE": "1"})


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path

    def query(self, sql: str, *params: object) -> list[tuple]:  # type: ignore[type-arg]
        if not self.path.exists():
            return []
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError:   # not migrated yet
            return []
        finally:
            conn.close()

    def events(self, kind: str | None = None) -> list[dict[str, object]]:
        return [dict(json.loads(data), time=t, kind=k) for t, k, data in self.query(
            "SELECT time, kind, data FROM events WHERE kind LIKE 'target%' ORDER BY id")
            if kind is None or k == kind]

    def state(self, name: str) -> str:
        rows = self.query("SELECT w.state FROM watch_windows w JOIN watch_targets t ON "
                          "t.id = w.target_id WHERE t.name = ? AND w.end IS NULL", name)
        return rows[0][0] if rows else "unknown"

    def windows(self, name: str) -> list[tuple[str, float, float, float | None]]:
        return self.query("SELECT w.state, w.start, w.last, w.end FROM watch_windows w JOIN "
                          "watch_targets t ON t.id = w.target_id WHERE t.name = ? "
                          "ORDER BY w.start", name)

    def samples(self, name: str) -> list[tuple[float, float | None]]:
        return self.query("SELECT s.time, s.latency_ms FROM watch_samples s JOIN "
                          "watch_targets t ON t.id = s.target_id WHERE t.name = ? "
                          "ORDER BY s.time", name)


def wait_for(check: Callable[[], object], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def settle() -> None:
    """Long enough for K more rounds: what has not happened by then will not."""
    time.sleep(INTERVAL * (FAIL_AFTER + 2))


def test_outages_give_one_down_and_one_up_each(net: WatchNet, data_dir: Path):
    config = write_config(data_dir)
    store = Store(data_dir / "nw.db")
    watch = start_as_nobody(net, "watch", "run", "--config", str(config))
    try:
        up = ("web", "ping", "ssh", "resolver", "internet")
        wait_for(lambda: all(store.state(n) == "up" for n in up), "every target up")
        assert store.events() == []          # coming up from unknown is no event

        # The web server and pings go away together, then come back.
        stopped = time.time()
        net.stop("http")
        net.ignore_pings(True)
        wait_for(lambda: len(store.events("target_down")) == 2, "web and ping down")
        settle()
        returned = time.time()
        net.start("http")
        net.ignore_pings(False)
        wait_for(lambda: len(store.events("target_up")) == 2, "web and ping back")

        # One member of the internet group down: no event; both: one for the group.
        net.stop("tcp")
        wait_for(lambda: store.state("ssh") == "down", "ssh's down window")
        settle()
        assert sorted(e["target"] for e in store.events()) == ["ping", "ping", "web", "web"]
        net.stop("dns")
        wait_for(lambda: store.state("internet") == "down", "the group down")
        net.start("tcp")
        net.start("dns")
        wait_for(lambda: store.state("internet") == "up", "the group back")
        settle()
    finally:
        stop_process(watch)
    output = watch.stdout.read() if watch.stdout else ""
    assert watch.returncode == 0, output

    events = store.events()
    by_target = {(e["kind"], e["target"]) for e in events}
    assert len(events) == 6 and by_target == {
        (kind, target) for kind in ("target_down", "target_up")
        for target in ("web", "ping", "internet")}, events
    web_down = next(e for e in events if e["kind"] == "target_down" and e["target"] == "web")
    assert web_down["probe"] == f"http://{SERVER_IP}:{HTTP_PORT}/"
    assert web_down["group"] == "" and "refused" in str(web_down["reason"]).lower()
    group_down = next(e for e in events if e["kind"] == "target_down"
                      and e["target"] == "internet")
    assert group_down["group"] == "internet" and group_down["members"] == ["ssh", "resolver"]

    # The outage window: from the first failed probe to the first answered one.
    _, start, _, end = next(w for w in store.windows("web") if w[0] == "down")
    assert stopped <= start < float(web_down["time"]) and end is not None
    assert returned <= end < time.time()
    failed_before_event = [t for t, ms in store.samples("web")
                           if ms is None and start <= t <= float(web_down["time"])]
    assert len(failed_before_event) == FAIL_AFTER     # down after exactly K failures
    states = [w[0] for w in store.windows("web")]
    assert states == ["up", "down", "up"]
    assert [w[0] for w in store.windows("ssh")] == ["up", "down", "up"]

    # Latency: answered probes, each under the timeout.
    for name in ("web", "ping", "ssh", "resolver"):
        answered = [ms for _, ms in store.samples(name) if ms is not None]
        assert len(answered) >= 5 and all(0 < ms < TIMEOUT * 1000 for ms in answered), name
    # Outside its schedule: never probed, never an event.
    assert store.samples("night") == [] and store.windows("night") == []


def test_watch_once_and_status_from_the_cli(net: WatchNet, data_dir: Path):
    config = write_config(data_dir)
    net.stop("dns")
    done = subprocess.run(as_nobody(net, "watch", "once", "--json", "--config", str(config)),
                          cwd=REPO, capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    # nobody has no ping sockets here (ping_group_range not set): ICMP says why.
    records = {r["target"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert done.returncode == 69, done.stderr
    assert records["web"]["state"] == "up" and records["ssh"]["state"] == "up"
    assert records["resolver"]["state"] == "down"
    assert "ping_group_range" in str(records["ping"]["reason"])
    assert records["night"]["state"] == "unscheduled"


def test_the_discovery_service_runs_the_watch(net: WatchNet, data_dir: Path):
    extra = ('[discovery]\ninterfaces = ["nwwc' + net.client.split("-")[1] + '"]\n'
             'methods = ["neighbours"]\ninterval_s = 3600\npresence_gap_s = 3600\n')
    config = write_config(data_dir, extra)
    store = Store(data_dir / "nw.db")
    service = start_as_nobody(net, "discovery", "--config", str(config))
    try:
        wait_for(lambda: store.state("web") == "up" and store.state("ping") == "up",
                 "the watch inside discovery")
        net.stop("http")
        wait_for(lambda: store.events("target_down"), "web down")
    finally:
        stop_process(service)
    output = service.stdout.read() if service.stdout else ""
    assert service.returncode == 0, output
    assert [e["target"] for e in store.events("target_down")] == ["web"]
