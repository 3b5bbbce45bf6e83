"""The whole path: the real sensor writes, `netwarden sink` (as an unprivileged user) ships to a
real PostgreSQL or MariaDB server, through an outage and kill -9, and the server's rows equal
the store's exactly.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sensor_proc import REPO, SensorProcess, netwarden, netwarden_cmd
from tests.support.sql_servers import MariadbServer, PostgresServer, provisioned
from tests.support.users import temporary_user

HOST_ROLE, HOST_PASSWORD = "host_e2e", "e2e-host-Secret-91"
READER_ROLE, READER_PASSWORD = "reader_e2e", "e2e-reader-Secret-17"


class Chatter:
    """Loopback TCP traffic from this process: a new connection (a new flow row) every few
    milliseconds, so every write window has rows to ship."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve, daemon=True),
                         threading.Thread(target=self._talk, daemon=True)]

    def __enter__(self) -> "Chatter":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._server.close()

    def _serve(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data[:100])

    def _talk(self) -> None:
        while not self._stop.is_set():
            with socket.create_connection(("127.0.0.1", self.port)) as conn:
                conn.sendall(os.urandom(random.randint(200, 5000)))
                conn.recv(100)
            time.sleep(0.01)


@pytest.fixture(params=["postgresql", "mariadb"])
def server(request: pytest.FixtureRequest) -> Iterator[PostgresServer | MariadbServer]:
    with provisioned(request.param, HOST_ROLE, HOST_PASSWORD, READER_ROLE, READER_PASSWORD) as srv:
        yield srv


@pytest.fixture
def setup(server: PostgresServer | MariadbServer) -> Iterator[dict[str, object]]:
    """A sensor whose store the sink's user owns, and that user's files."""
    base = Path(tempfile.mkdtemp(prefix="nwtest-sink-"))
    os.chmod(base, 0o755)
    with temporary_user("nwsink") as account:
        secrets = base / "secrets"
        secrets.mkdir(mode=0o750)
        for name, secret in (("host", HOST_PASSWORD), ("reader", READER_PASSWORD)):
            (secrets / name).write_text(secret + "\n")
            os.chown(secrets / name, account.pw_uid, account.pw_gid)
            os.chmod(secrets / name, 0o600)
        os.chown(secrets, account.pw_uid, account.pw_gid)
        state = base / "state"
        state.mkdir()
        os.chown(state, account.pw_uid, account.pw_gid)
        extra = (f'[store]\ngroup = ""\nowner = "{account.pw_name}"\n'
                 f'[remote]\nurl = "{server.url(HOST_ROLE)}"\n'
                 f'password_file = "{secrets / "host"}"\n'
                 f'reader_password_file = "{secrets / "reader"}"\n'
                 f'state_path = "{state / "sink.db"}"\nbatch_rows = 40\ninterval_s = 0.2\n'
                 'retry_max_s = 1.0\n')
        sensor = SensorProcess.write_config(base / "sensor", extra=extra)
        os.chmod(sensor.config, 0o644)
        os.chmod(base / "sensor", 0o755)
        try:
            yield {"sensor": sensor, "user": account.pw_name, "base": base, "server": server}
        finally:
            if sensor.proc is not None and sensor.proc.poll() is None:
                sensor.stop()
            shutil.rmtree(base, ignore_errors=True)


def start_sink(setup: dict[str, object]) -> subprocess.Popen[bytes]:
    sensor = setup["sensor"]
    assert isinstance(sensor, SensorProcess)
    log = open(Path(str(setup["base"])) / "sink.log", "ab")
    return subprocess.Popen(
        netwarden_cmd("sink", "--config", str(sensor.config), "--db", str(sensor.db),
                      "--user", str(setup["user"])),
        stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=str(REPO)))


def sink_status(setup: dict[str, object]) -> dict[str, object]:
    sensor = setup["sensor"]
    assert isinstance(sensor, SensorProcess)
    done = netwarden("sink", "--config", str(sensor.config), "--status", "--json", check=False)
    return json.loads(done.stdout) if done.stdout else {}


def wait_caught_up(setup: dict[str, object], timeout: float = 90) -> dict[str, object]:
    deadline = time.time() + timeout
    status: dict[str, object] = {}
    while time.time() < deadline:
        status = sink_status(setup)
        if status.get("state") == "caught up" and status.get("behind_rows") == 0:
            return status
        time.sleep(0.3)
    raise AssertionError(f"the sink did not catch up: {status}")


def exports(setup: dict[str, object]) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """(the store's flow records, the server's records of this host without `host`)."""
    sensor, server = setup["sensor"], setup["server"]
    assert isinstance(sensor, SensorProcess)
    local = sensor.export()
    done = netwarden("export", "--db", server.url(READER_ROLE), "--config",  # type: ignore[union-attr]
                     str(sensor.config), "--user", str(setup["user"]), "--format", "jsonl")
    remote = [json.loads(line) for line in done.stdout.splitlines()]
    assert {r.pop("host") for r in remote} <= {HOST_ROLE}
    return local, remote


def assert_equal(setup: dict[str, object]) -> None:
    local, remote = exports(setup)
    assert len(local) > 50
    assert remote == local          # the same records, in the same order: none lost, none twice
    assert sum(int(r["sent"]) for r in remote) == sum(int(r["sent"]) for r in local)
    assert sum(int(r["recv"]) for r in remote) == sum(int(r["recv"]) for r in local)


def test_outage_of_five_windows_loses_nothing(setup: dict[str, object]) -> None:
    sensor, server = setup["sensor"], setup["server"]
    assert isinstance(sensor, SensorProcess)
    sensor.start()
    sink = start_sink(setup)
    try:
        with Chatter():
            time.sleep(3)
            server.stop()                                   # type: ignore[union-attr]
            time.sleep(6 * sensor.write_interval_s)         # at least five write windows
            status = sink_status(setup)
            assert status["state"] == "retrying" and int(status["behind_rows"]) > 0, status
            assert HOST_PASSWORD not in json.dumps(status)
            # The sensor says it too: the lag in its health rows (deltas summing to it).
            lag = sum(int(json.loads(line)["delta"]) for line in netwarden(
                "health", "--db", str(sensor.db)).stdout.splitlines()
                if '"behind_rows"' in line)
            assert lag > 0
            server.start()                                  # type: ignore[union-attr]
            time.sleep(2)
        sensor.stop()
        wait_caught_up(setup)
        assert_equal(setup)
        doctor = netwarden("doctor", "--no-load", "--config", str(sensor.config)).stdout
        assert "remote sink  caught up, 0 rows / 0 s behind" in doctor, doctor
        assert HOST_PASSWORD not in doctor
    finally:
        sink.send_signal(signal.SIGTERM)
        assert sink.wait(timeout=30) == 0
    log = (Path(str(setup["base"])) / "sink.log").read_text()
    assert "retrying" in log and HOST_PASSWORD not in log


def test_the_sink_works_with_exactly_its_units_privileges(setup: dict[str, object]) -> None:
    """netwarden-sink.service's sandbox rebuilt with setpriv (tests/support/units.py): the
    store owner's user for User=, an empty capability bounding set, no_new_privs,
    MemoryDenyWriteExecute. Started so, `netwarden sink --once` ships the store."""
    import pwd

    from tests.support.units import UNITS_DIR, sandbox_prefix
    sensor = setup["sensor"]
    assert isinstance(sensor, SensorProcess)
    sensor.start()
    with Chatter():
        time.sleep(3)
    sensor.stop()
    account = pwd.getpwnam(str(setup["user"]))
    done = subprocess.run(
        [*sandbox_prefix(UNITS_DIR / "netwarden-sink.service", account=account),
         sys.executable, "-m", "netwarden", "sink", "--once", "--config", str(sensor.config),
         "--db", str(sensor.db)],
        capture_output=True, text=True, timeout=120, cwd="/",
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr
    assert_equal(setup)


def test_kill_9_at_several_points_of_a_replay(setup: dict[str, object]) -> None:
    sensor, server = setup["sensor"], setup["server"]
    assert isinstance(sensor, SensorProcess)
    server.stop()                                           # type: ignore[union-attr]
    sensor.start()
    with Chatter():
        time.sleep(8)
    sensor.stop()
    server.start()                                          # type: ignore[union-attr]
    # Small batches: the replay takes many rounds, and each kill lands inside it.
    sensor.config.write_text(sensor.config.read_text().replace("batch_rows = 40",
                                                               "batch_rows = 5"))
    state = Path(str(setup["base"])) / "state" / "sink.db"
    shipped = 0
    for pause in (0.0, 0.01, 0.03, 0.002, 0.02):
        sink = start_sink(setup)
        shipped = wait_for_progress(state, shipped, sink)
        time.sleep(pause)                                   # somewhere in the next round
        sink.send_signal(signal.SIGKILL)
        sink.wait(timeout=10)
    status = sink_status(setup)
    assert int(status["behind_rows"]) > 0, "the replay ended before the last kill"
    sink = start_sink(setup)
    try:
        wait_caught_up(setup)
        assert_equal(setup)
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(timeout=30)


def wait_for_progress(state: Path, before: int, sink: subprocess.Popen[bytes]) -> int:
    """Until the sink's cursors have moved past ``before`` (the sum of its cursors)."""
    import sqlite3
    deadline = time.time() + 60
    while time.time() < deadline:
        assert sink.poll() is None, "the sink exited"
        if state.exists():
            try:
                conn = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
                (total,) = conn.execute("SELECT COALESCE(SUM(seq), 0) FROM cursors").fetchone()
                conn.close()
            except sqlite3.Error:
                total = before
            if total > before:
                return int(total)
        time.sleep(0.005)
    raise AssertionError("the sink made no progress")


def test_root_without_user_is_refused_and_the_drop_is_proven(
        setup: dict[str, object]) -> None:
    sensor = setup["sensor"]
    assert isinstance(sensor, SensorProcess)
    refused = netwarden("sink", "--config", str(sensor.config), "--once", check=False)
    assert refused.returncode == 77 and "--user" in refused.stderr
    sensor.start()
    sensor.stop()
    probe = ("import sys, os; from netwarden.cli import main; "
             "rc = main(sys.argv[1:]); "
             "loaded = [m for m in ('psycopg', 'pymysql') if m in sys.modules]; "
             "assert os.getuid() != 0 and os.geteuid() != 0, 'still root'; "
             "exec('try:\\n os.setuid(0)\\nexcept PermissionError: pass\\n"
             "else: raise SystemExit(\"setuid(0) worked\")'); "
             "print('uid', os.getuid(), 'drivers', loaded, 'rc', rc)")
    done = subprocess.run(
        [netwarden_cmd()[0], "-c", probe, "sink", "--config", str(sensor.config), "--db",
         str(sensor.db), "--user", str(setup["user"]), "--once"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr
    assert "rc 0" in done.stdout and "uid 0" not in done.stdout
