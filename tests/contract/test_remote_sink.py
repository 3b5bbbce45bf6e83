"""The remote sink against real PostgreSQL and MariaDB servers started by this test.

Each server gets the schema from `netwarden sink --init-schema` (as its administrator) and
exactly the roles `netwarden sink --print-grants` prints; the sink then ships a store written
by the real writers, and the server's rows are compared with the store's, column by column.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netwarden.config import parse_remote_url
from netwarden.model import HealthSample
from netwarden.sink.shipper import Shipper
from netwarden.store.remote_db import (
    RemoteSchemaError,
    RemoteTarget,
    RemoteUnavailable,
    connect,
)
from netwarden.store.remote_schema import REMOTE_LATEST, shipped_columns
from netwarden.store.shipping import SHIPPED_TABLES, source_id
from netwarden.store.sink_state import SinkStateFile, read_status
from netwarden.store.sqlite_writer import SqliteWriter
from tests.support.device_data import seed_devices
from tests.support.sql_servers import (
    MariadbServer,
    PostgresServer,
    add_roles,
    admin_password_file,
    provisioned,
)
from tests.support.viewer_data import seed_store

HOST_ROLE, READER_ROLE = "host_alpha", "fleet_reader"
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
PASSWORD = "Tr0ub4dor-3-sink-secret"
READER_PASSWORD = "reader-secret-42"


def netwarden(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "netwarden", *args], capture_output=True,
                          text=True, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"netwarden {' '.join(args)}: {done.returncode}\n{done.stderr}")
    return done


@pytest.fixture(scope="module", params=["postgresql", "mariadb"])
def server(request: pytest.FixtureRequest) -> Iterator[PostgresServer | MariadbServer]:
    with provisioned(request.param, HOST_ROLE, PASSWORD, READER_ROLE, READER_PASSWORD) as srv:
        yield srv


def target(srv: PostgresServer | MariadbServer, password: str = PASSWORD,
           role: str = HOST_ROLE) -> RemoteTarget:
    return RemoteTarget(parse_remote_url(srv.url(role)), password)


def reader(srv: PostgresServer | MariadbServer):
    return connect(target(srv, READER_PASSWORD, READER_ROLE))


def make_store(path: Path) -> Path:
    now = int(time.time())
    seed_store(path, now)
    seed_devices(path, now)
    writer = SqliteWriter(path, now, group=None, host="testhost")
    writer.write([], [], [HealthSample(now - 5, "net", "flow_map_full", 2)], now)
    writer.close()
    # A change after the first version: executables.first_flow and device rows move on.
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE presence SET last_seen = last_seen + 1")
    conn.close()
    return path


def shipper(srv: PostgresServer | MariadbServer, db: Path, state: Path,
            password: str = PASSWORD, batch_rows: int = 3) -> Shipper:
    return Shipper(db, SinkStateFile(state), target(srv, password), connect, batch_rows)


def local_rows(db: Path) -> dict[str, set[tuple[object, ...]]]:
    columns = shipped_columns()
    conn = sqlite3.connect(db)
    source = source_id(conn)
    rows = {}
    for table in SHIPPED_TABLES:
        names = ", ".join(c.name for c in columns[table.name])
        rows[table.name] = {(HOST_ROLE, source, *r) for r in
                            conn.execute(f"SELECT {names} FROM {table.name}")}
    conn.close()
    return rows


def remote_rows(srv: PostgresServer | MariadbServer) -> dict[str, list[tuple[object, ...]]]:
    columns = shipped_columns()
    conn = reader(srv)
    q = conn.dialect.ident
    rows = {}
    for table in SHIPPED_TABLES:
        names = ", ".join(q(c.name) for c in columns[table.name])
        rows[table.name] = [tuple(r) for r in conn.execute(
            f"SELECT host, source_id, {names} FROM {q(table.name)}")]
    conn.close()
    return rows


def assert_same(db: Path, srv: PostgresServer | MariadbServer) -> None:
    """Every local row on the server exactly once, values unchanged (but NUL, which
    PostgreSQL's text cannot hold: U+2400 there)."""
    local, remote = local_rows(db), remote_rows(srv)
    if srv.dialect == "postgresql":
        local = {t: {tuple(v.replace("\0", "\u2400") if isinstance(v, str) else v
                           for v in row) for row in rows} for t, rows in local.items()}
    source = local["hosts"] and next(iter(local["hosts"]))[1]
    for table in SHIPPED_TABLES:
        mine = [r for r in remote[table.name] if r[1] == source]
        assert len(mine) == len(set(mine)), f"{table.name}: a row arrived twice"
        assert set(mine) >= local[table.name] - set(), table.name
        if not table.versioned:
            assert set(mine) == local[table.name], table.name


def test_ships_every_table_exactly_once_and_a_resend_is_harmless(
        server: PostgresServer | MariadbServer, tmp_path: Path) -> None:
    db = make_store(tmp_path / "store.db")
    ship = shipper(server, db, tmp_path / "state.db")
    shipped = ship.catch_up()
    assert shipped >= sum(len(v) for v in local_rows(db).values())
    assert_same(db, server)
    # A crash after the server's COMMIT but before the cursor moved: everything is sent
    # again, and the server keeps one copy of each row.
    (tmp_path / "state.db").unlink()
    again = shipper(server, db, tmp_path / "state.db")
    assert again.catch_up() == shipped
    assert_same(db, server)
    status = again.status
    assert status.state == "caught up" and status.behind_rows == 0 and not status.error


def test_versions_of_changing_rows_all_arrive(server: PostgresServer | MariadbServer,
                                              tmp_path: Path) -> None:
    db = make_store(tmp_path / "store.db")
    ship = shipper(server, db, tmp_path / "state.db")
    ship.catch_up()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("UPDATE presence SET end = last_seen")
    latest = conn.execute("SELECT id, end, seq FROM presence ORDER BY id").fetchall()
    conn.close()
    assert ship.catch_up() == len(latest)
    remote = reader(server)
    q = remote.dialect.ident
    src = source_id(sqlite3.connect(db))
    rows = remote.execute(
        f"SELECT p.id, p.{q('end')}, p.seq FROM presence p WHERE p.source_id = %s AND p.seq = "
        "(SELECT MAX(v.seq) FROM presence v WHERE v.source_id = p.source_id AND v.id = p.id) "
        "ORDER BY p.id", (src,))
    remote.close()
    assert [tuple(r) for r in rows] == latest


def test_host_role_cannot_rewrite_or_impersonate(server: PostgresServer | MariadbServer,
                                                  tmp_path: Path) -> None:
    db = make_store(tmp_path / "store.db")
    shipper(server, db, tmp_path / "state.db").catch_up()
    host = connect(target(server))
    refused = []
    for sql in ("UPDATE flows SET sent = 0", "DELETE FROM flows", "TRUNCATE TABLE flows",
                "DROP TABLE flows"):
        try:
            host.execute(sql)
            host.commit()
        except Exception as exc:
            refused.append(str(exc))
            host.rollback()
        else:
            pytest.fail(f"the host's role could run: {sql}")
    denied = ("permission denied", "must be owner") if server.dialect == "postgresql" \
        else ("command denied",)
    assert all(any(d in message.lower() for d in denied) for message in refused), refused
    # A row claiming another host: refused (PostgreSQL) or stored under its own role.
    try:
        host.execute("INSERT INTO hosts (host, source_id, id, name) VALUES "
                     "('host_beta', 'forged', 1, 'x')")
        host.commit()
    except Exception as exc:
        assert server.dialect == "postgresql" and "may not write rows of host" in str(exc)
        host.rollback()
    else:
        remote = reader(server)
        assert [tuple(r) for r in remote.execute(
            "SELECT host FROM hosts WHERE source_id = 'forged'")] == [(HOST_ROLE,)]
        remote.close()
    host.close()


def test_outage_spools_then_catches_up_and_the_password_is_never_shown(
        server: PostgresServer | MariadbServer, tmp_path: Path) -> None:
    db = make_store(tmp_path / "store.db")
    state = tmp_path / "state.db"
    wrong = shipper(server, db, state, password="not-" + PASSWORD)
    assert wrong.run(lambda: False, lambda s: None, 1, 1, once=True) == 75
    status = read_status(state)
    assert status is not None and status.state == "retrying" and status.behind_rows > 0
    assert "password" in status.error.lower() or "denied" in status.error.lower()
    assert PASSWORD not in status.error and "not-" + PASSWORD not in status.error
    server.stop()
    try:
        down = shipper(server, db, state)
        assert down.run(lambda: False, lambda s: None, 1, 1, once=True) == 75
        status = read_status(state)
        assert status is not None and "cannot connect" in status.error
        assert status.behind_rows == sum(len(v) for v in local_rows(db).values())
    finally:
        server.start()
    up = shipper(server, db, state)
    assert up.run(lambda: False, lambda s: None, 1, 1, once=True) == 0
    assert_same(db, server)
    assert read_status(state).behind_rows == 0   # type: ignore[union-attr]


def test_a_failure_mid_replay_moves_no_cursor_past_the_last_commit(
        server: PostgresServer | MariadbServer, tmp_path: Path) -> None:
    """The sink reads the next batch while one travels: when the server fails on the
    fourth batch, the cursors stand at the third's end (not at what was read ahead), and
    the next catch-up ships the rest, each row once."""
    db = make_store(tmp_path / "store.db")
    state = tmp_path / "state.db"
    sent: list[int] = []

    def failing_connector(target: RemoteTarget):
        remote = connect(target)
        insert = remote.insert

        def insert_or_fail(outgoing):
            if len(sent) == 3:
                raise remote.driver_errors[0]("the server went away")
            insert(outgoing)

        def commit() -> None:
            remote.raw.commit()
            sent.append(1)
        remote.insert, remote.commit = insert_or_fail, commit
        return remote

    flaky = Shipper(db, SinkStateFile(state), target(server), failing_connector, 3)
    with pytest.raises(RemoteUnavailable, match="went away"):
        flaky.catch_up()
    assert len(sent) == 3
    committed = remote_rows(server)
    source = local_rows(db)["hosts"] and next(iter(local_rows(db)["hosts"]))[1]
    cursors = SinkStateFile(state).cursors(source)
    for table in SHIPPED_TABLES:
        position = 2 + [c.name for c in shipped_columns()[table.name]].index(table.sequence)
        mine = [r[position] for r in committed[table.name] if r[1] == source]
        assert cursors.get(table.name, 0) == max(mine, default=0), table.name
    shipper(server, db, state).catch_up()
    assert_same(db, server)


def test_a_newer_server_schema_is_refused_naming_both_versions(
        server: PostgresServer | MariadbServer, tmp_path: Path) -> None:
    db = make_store(tmp_path / "store.db")
    admin = server.admin()
    try:
        admin.cursor().execute("INSERT INTO schema_version (version, description, applied) "
                               f"VALUES ({REMOTE_LATEST + 1}, 'from the future', 0)")
        with pytest.raises(RemoteSchemaError, match=f"version {REMOTE_LATEST + 1}.*"
                                                    f"netwarden's {REMOTE_LATEST}"):
            shipper(server, db, tmp_path / "state.db").catch_up()
    finally:
        admin.cursor().execute(f"DELETE FROM schema_version WHERE version > {REMOTE_LATEST}")
        admin.close()


def test_init_schema_migrates_a_version_1_server(server: PostgresServer | MariadbServer,
                                                  tmp_path: Path) -> None:
    """Version 1 as it was (PostgreSQL: row-level security and its policies): the sink
    waits for an administrator, and `--init-schema` brings it to the latest version, after
    which the sink COPYs into the tables."""
    tables = [t.name for t in SHIPPED_TABLES]
    admin = server.admin()
    cur = admin.cursor()
    cur.execute("DELETE FROM schema_version")
    cur.execute("INSERT INTO schema_version (version, description, applied) "
                "VALUES (1, 'as version 1 left it', 0)")
    if server.dialect == "postgresql":
        for name in tables:
            cur.execute(f'ALTER TABLE "{name}" ENABLE ROW LEVEL SECURITY')
            cur.execute(f'CREATE POLICY host_inserts ON "{name}" FOR INSERT TO netwarden_hosts '
                        "WITH CHECK (host = current_user)")
            cur.execute(f'CREATE POLICY readers_read ON "{name}" FOR SELECT '
                        "TO netwarden_readers USING (true)")
            cur.execute(f'DROP TRIGGER "{name}_host" ON "{name}"')
    admin.commit()
    db = make_store(tmp_path / "store.db")
    with pytest.raises(RemoteSchemaError, match=f"version 1, older than this netwarden's "
                                                f"{REMOTE_LATEST}"):
        shipper(server, db, tmp_path / "state.db").catch_up()
    netwarden("sink", "--init-schema", "--admin-url", server.admin_url(), "--user", "nobody",
              "--admin-password-file", str(admin_password_file(server.directory)))
    cur = admin.cursor()
    cur.execute("SELECT MAX(version) FROM schema_version")
    assert cur.fetchone()[0] == REMOTE_LATEST
    if server.dialect == "postgresql":
        cur.execute("SELECT relname FROM pg_class WHERE relrowsecurity")
        assert cur.fetchall() == []
        cur.execute("SELECT tablename, policyname FROM pg_policies")
        assert cur.fetchall() == []
        cur.execute("SELECT DISTINCT event_object_table FROM information_schema.triggers "
                    "WHERE trigger_name LIKE '%\\_host'")
        assert {r[0] for r in cur.fetchall()} >= set(tables)
    admin.commit()
    admin.close()
    shipper(server, db, tmp_path / "state.db").catch_up()
    assert_same(db, server)


def test_unreachable_server_is_retryable() -> None:
    url = parse_remote_url("postgresql://nobody@127.0.0.1:1/netwarden")
    with pytest.raises(RemoteUnavailable, match="cannot connect"):
        connect(RemoteTarget(url, "x", connect_timeout_s=2))
    assert os.geteuid() >= 0


def readable_dir() -> Path:
    """A directory the unprivileged user the CLI drops to can read (pytest's is 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="netwarden-sink-test-"))
    os.chmod(directory, 0o755)
    return directory


def reader_config(shared: Path, more: str = "") -> Path:
    """A config in ``shared`` whose [remote] reader_password_file holds the reader's
    password, both readable by the user the CLI drops to; ``more``: further sections."""
    (shared / "reader-password").write_text(READER_PASSWORD + "\n")
    os.chmod(shared / "reader-password", 0o644)
    config = shared / "config.toml"
    config.write_text(f'[remote]\nreader_password_file = "{shared / "reader-password"}"\n'
                      + more)
    os.chmod(config, 0o644)
    return config


def test_export_from_the_server_equals_the_store_record_for_record(
        server: PostgresServer | MariadbServer, tmp_path: Path) -> None:
    role, password = "host_export", "export-host-secret"
    add_roles(server, role, password, READER_ROLE, READER_PASSWORD)
    db = make_store(tmp_path / "store.db")
    Shipper(db, SinkStateFile(tmp_path / "state.db"), target(server, password, role), connect,
            batch_rows=2).catch_up()
    shared = readable_dir()
    try:
        config = reader_config(shared)
        url = server.url(READER_ROLE)
        for command, extra in (("export", ["--format", "jsonl"]), ("events", []),
                               ("health", [])):
            local = [json.loads(line) for line in netwarden(
                command, "--db", str(db), *extra).stdout.splitlines()]
            remote = [json.loads(line) for line in netwarden(
                command, "--db", url, "--config", str(config), "--user", "nobody",
                *extra).stdout.splitlines()]
            mine = [r for r in remote if r.pop("host") == role]
            assert local and mine == local, command
        assert READER_PASSWORD not in netwarden("export", "--db", url.replace(
            READER_ROLE, READER_ROLE + "x"), "--config", str(config), "--user", "nobody",
            "--format", "jsonl", check=False).stderr
    finally:
        shutil.rmtree(shared)


def test_a_stopped_sink_is_silent_after_its_grace_and_back_when_it_returns(
        server: PostgresServer | MariadbServer, tmp_path: Path) -> None:
    import datetime as dt
    import threading
    role, password = "host_beat", "beat-host-secret"
    add_roles(server, role, password, READER_ROLE, READER_PASSWORD)
    db = make_store(tmp_path / "store.db")

    def ship(stop: threading.Event) -> None:
        Shipper(db, SinkStateFile(tmp_path / "state.db"), target(server, password, role),
                connect, heartbeat_s=0.3).run(stop.is_set, stop.wait, 0.1, 1.0)

    def run_sink(stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=ship, args=(stop,))
        thread.start()
        return thread

    shared = readable_dir()
    events = shared / "events"
    events.mkdir()
    shutil.chown(events, "nobody")
    never = DAY_NAMES[(dt.date.today().weekday() + 3) % 7]
    config = reader_config(shared, f'[fleet]\nurl = "{server.url(READER_ROLE)}"\ngrace_s = 2\n'
                                   f'schedules = ["{role}=always", "*={never} 03:00-03:01"]\n'
                                   f'events_db = "{events / "fleet.db"}"\n')

    def watch() -> list[tuple[str, str]]:
        done = netwarden("fleet", "watch", "--once", "--config", str(config), "--user", "nobody")
        return [(e["kind"], e["host"]) for e in map(json.loads, done.stdout.splitlines())]

    stop = threading.Event()
    sink = run_sink(stop)
    try:
        time.sleep(1)
        assert watch() == []                 # heard; the other hosts are off-schedule
        hosts = [json.loads(line) for line in netwarden(
            "fleet", "hosts", "--json", "--config", str(config), "--user", "nobody"
        ).stdout.splitlines()]
        assert {h["host"] for h in hosts} >= {role} and all(
            h["state"] == "caught up" for h in hosts if h["host"] == role)
        stop.set()
        sink.join(timeout=10)
        time.sleep(3)                        # past the 2 s grace
        assert watch() == [("host_silent", role)]
        assert watch() == []                 # once, also across restarts of the watcher
        stop = threading.Event()
        sink = run_sink(stop)
        time.sleep(1)
        assert watch() == [("host_back", role)]
    finally:
        stop.set()
        sink.join(timeout=10)
        shutil.rmtree(shared)


def test_flows_are_partitioned_by_month_and_old_months_are_dropped(
        server: PostgresServer | MariadbServer, tmp_path: Path) -> None:
    from netwarden.store.remote_partitions import Month
    admin_args = ("--admin-url", server.admin_url(), "--user", "nobody",
                  "--admin-password-file", str(server.directory / "admin-password"))
    first = netwarden("sink", "--maintain-partitions", *admin_args).stdout
    assert "months added: none; dropped: none" in first      # init made a year ahead
    # A row of a month long gone (a clock far off, or an old backlog) lands in the
    # catch-all; rows of this month in this month's partition.
    db = make_store(tmp_path / "store.db")
    shipper(server, db, tmp_path / "state.db").catch_up()
    this_month = Month.of(time.time())
    admin = server.admin()
    cur = admin.cursor()
    if server.dialect == "postgresql":
        cur.execute(f"SELECT COUNT(*) FROM flows_{this_month.label}")
    else:
        cur.execute(f"SELECT COUNT(*) FROM flows PARTITION ({this_month.label})")
    assert cur.fetchone()[0] > 0
    admin.close()
    # Keeping 0 days is refused; keeping 1 day drops no month that has not ended.
    assert netwarden("sink", "--maintain-partitions", "--keep-days", "0", *admin_args,
                     check=False).returncode == 2
    kept = netwarden("sink", "--maintain-partitions", "--keep-days", "1", *admin_args).stdout
    assert "dropped: none" in kept
    # A year on, with 30 days kept: this month's partition goes, rows and all, in one DROP
    # (this test is the module's last for each server: it deletes what others shipped).
    from netwarden.sink.admin import maintain_partitions
    from tests.support.sql_servers import ADMIN_PASSWORD
    admin_target = RemoteTarget(parse_remote_url(server.admin_url()), ADMIN_PASSWORD)
    added, dropped = maintain_partitions(admin_target, time.time() + 400 * 86400, 30)
    assert this_month in dropped and len(added) >= 12
    remote = reader(server)
    assert remote.execute("SELECT COUNT(*) FROM flows WHERE time >= %s AND time < %s",
                          (this_month.start, this_month.end)) == [(0,)]
    remote.close()


def test_the_viewers_queries_answer_the_same_from_the_server(
        server: PostgresServer | MariadbServer, tmp_path: Path) -> None:
    """Every traffic query the TUI and Dash run, on the server filtered to one host, equals
    the same query on that host's store."""
    from netwarden.store import event_queries as eq
    from netwarden.store import traffic_queries as tq
    from netwarden.store.read_source import ReadSource, local_source
    from netwarden.store.remote_db import open_reader
    role, password = "host_view", "view-host-secret"
    add_roles(server, role, password, READER_ROLE, READER_PASSWORD)
    db = tmp_path / "store.db"
    seeded = seed_store(db, int(time.time()))
    Shipper(db, SinkStateFile(tmp_path / "state.db"), target(server, password, role),
            connect).catch_up()
    local = local_source(sqlite3.connect(db))
    remote: ReadSource = open_reader(target(server, READER_PASSWORD, READER_ROLE))
    mine = tq.Filter("host", role)
    try:
        assert role in [t.value for t in tq.traffic_totals(remote, "host", tq.TrafficView())]
        for since in (None, seeded.now - 3600):
            view = tq.TrafficView(since=since)
            only_mine = tq.TrafficView(since=since, filters=(mine,))
            for dim in ("exe", "name", "sha256", "parent", "domain", "raddr", "rport", "lport",
                        "user", "container"):
                assert tq.traffic_totals(remote, dim, only_mine) == \
                    tq.traffic_totals(local, dim, view), dim
            assert tq.traffic_series(remote, "exe", only_mine, seeded.now - 86400, 600) == \
                tq.traffic_series(local, "exe", view, seeded.now - 86400, 600)
            assert tq.view_flows(remote, only_mine, 50) == tq.view_flows(local, view, 50)
        curl = tq.TrafficView(filters=(mine, tq.Filter("exe", "/usr/bin/curl"),
                                      tq.Filter("domain", ""), tq.Filter("rport", "53", True)))
        local_curl = tq.TrafficView(filters=curl.filters[1:])
        assert tq.traffic_totals(remote, "raddr", curl) == tq.traffic_totals(local, "raddr",
                                                                              local_curl)
        assert tq.view_executables(remote, tq.TrafficView(filters=(mine,))) == \
            tq.view_executables(local, tq.TrafficView())
        # Versions are the fleet's (other tests shipped curl too): the same hashes at least.
        assert {v.sha256 for v in tq.executable_versions(remote, "/usr/bin/curl")} >= \
            {v.sha256 for v in tq.executable_versions(local, "/usr/bin/curl")}
        totals = tq.traffic_totals(remote, "exe", tq.TrafficView(filters=(mine,)))
        assert all(type(t.sent) is int and type(t.first_seen) is int for t in totals)
        events = [(e.time, e.kind, e.fields) for e in eq.view_events(remote, path="/usr/bin/curl")
                  if e.host == role]
        assert events == [(e.time, e.kind, e.fields)
                          for e in eq.view_events(local, path="/usr/bin/curl")]
    finally:
        remote.close()
        local.close()


def test_devices_and_presence_from_the_server_are_each_hosts_own(
        server: PostgresServer | MariadbServer, tmp_path: Path) -> None:
    """The devices and presence windows the TUI and Dash read, from the server, equal the
    host's store's (with ``host`` set), a known device removed on the host is no longer
    known there, and a second host seeing the same devices keeps its own rows."""
    from netwarden.model.discovery import KnownDevice
    from netwarden.store import device_queries as dq
    from netwarden.store.discovery_writer import DiscoveryWriter
    from netwarden.store.read_source import local_source
    from netwarden.store.remote_db import open_reader
    from netwarden.view.devices import device_key, device_labels
    from tests.support.device_data import HUE, PI
    now = int(time.time())
    stores = {}
    for role in ("host_lan_a", "host_lan_b"):
        add_roles(server, role, role + "-secret", READER_ROLE, READER_PASSWORD)
        db = tmp_path / f"{role}.db"
        seed_devices(db, now)
        writer = DiscoveryWriter(db, now, group=None)
        writer.set_known(KnownDevice(HUE, "hue " + role, False), now - 60)
        if role == "host_lan_a":
            assert writer.remove_known(PI)        # known before, then forgotten
        writer.close()
        Shipper(db, SinkStateFile(tmp_path / f"{role}.state"),
                target(server, role + "-secret", role), connect).catch_up()
        stores[role] = db
    remote = open_reader(target(server, READER_PASSWORD, READER_ROLE))
    try:
        assert dq.has_discovery_tables(remote)
        on_server = dq.devices(remote)
        windows = dq.presence_windows(remote, since=now - 86400)
        for role, db in stores.items():
            local = local_source(sqlite3.connect(db))
            mine = [r for r in on_server if r.host == role]
            assert mine == [r._replace(host=role) for r in dq.devices(local)], role
            assert [w for w in windows if w.host == role] == [
                w._replace(host=role) for w in dq.presence_windows(local, since=now - 86400)]
            assert [w for w in dq.presence_windows(remote, PI, now - 3600, now)
                    if w.host in stores] == sorted(
                [w._replace(host=h) for h, d in stores.items() for w in
                 dq.presence_windows(local_source(sqlite3.connect(d)), PI, now - 3600, now)],
                key=lambda w: (w.mac, w.host, w.start))
            local.close()
        known = {(r.host, r.mac): r.known_name for r in on_server
                 if r.known_name and r.host in stores}
        assert known == {("host_lan_a", HUE): "hue host_lan_a", ("host_lan_b", HUE):
                         "hue host_lan_b", ("host_lan_b", PI): "kitchen pi"}
        labels = device_labels([r for r in on_server if r.host in stores])
        assert labels[device_key(mine[0])].endswith(" @ host_lan_b")
        assert len(set(labels.values())) == len(labels)
    finally:
        remote.close()


def test_the_web_viewer_reuses_its_server_connections(
        server: PostgresServer | MariadbServer, tmp_path: Path) -> None:
    """Dash's requests to a server share pooled connections; after the server restarted,
    the next request logs in anew instead of failing."""
    from netwarden.config import RemoteConfig
    from netwarden.reading import ServerSource
    from netwarden.viewer_dash.source import reading
    secret = tmp_path / "reader-password"
    secret.write_text(READER_PASSWORD + "\n")
    os.chmod(secret, 0o600)
    source = ServerSource(server.url(READER_ROLE),
                          RemoteConfig(reader_password_file=str(secret)))
    backend = "SELECT pg_backend_pid()" if server.dialect == "postgresql" \
        else "SELECT CONNECTION_ID()"

    def backend_of_a_request() -> int:
        with reading(tmp_path / "unused.db", source) as conn:
            return int(conn.execute(backend).fetchone()[0])

    first = backend_of_a_request()
    assert backend_of_a_request() == first
    server.stop()
    server.start()
    again = backend_of_a_request()
    assert again != first and backend_of_a_request() == again


def test_a_tls_failure_is_one_clear_message_and_retried(
        server: PostgresServer | MariadbServer, tmp_path: Path) -> None:
    """The test servers offer no TLS: a sink that requires it refuses to ship in clear text,
    says why (without the password) and keeps the rows for the next try."""
    db = make_store(tmp_path / "store.db")
    state = tmp_path / "state.db"
    for mode in ("require", "verify-full"):
        tls = RemoteTarget(parse_remote_url(server.url(HOST_ROLE)), PASSWORD, tls=mode)
        ship = Shipper(db, SinkStateFile(state), tls, connect)
        assert ship.run(lambda: False, lambda s: None, 1, 1, once=True) == 75
        status = read_status(state)
        assert status is not None and status.state == "retrying", status
        assert "SSL" in status.error or "TLS" in status.error, status.error
        assert PASSWORD not in status.error and status.behind_rows > 0


def test_vacuum_renumbers_nothing_that_ships(server: PostgresServer | MariadbServer,
                                             tmp_path: Path) -> None:
    db = make_store(tmp_path / "store.db")
    ship = shipper(server, db, tmp_path / "state.db", batch_rows=1000)
    ship.catch_up()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DELETE FROM flows WHERE id = (SELECT MIN(id) FROM flows)")  # a gap, as
    conn.execute("VACUUM")                                                  # retention leaves
    conn.close()
    assert ship.catch_up() == 0          # nothing looks new: no sequence moved
    remote = reader(server)
    src = source_id(sqlite3.connect(db))
    (count,) = remote.execute("SELECT COUNT(*) FROM flows WHERE source_id = %s", (src,))[0]
    remote.close()
    assert count == len(local_rows(db)["flows"]) + 1     # the server keeps the deleted one


def test_awkward_text_arrives_unchanged(server: PostgresServer | MariadbServer,
                                        tmp_path: Path) -> None:
    """Values written into statements (MariaDB) or streamed by COPY (PostgreSQL) come back
    exactly: quotes, backslashes, NUL, line ends, Ctrl-Z, non-ASCII."""
    from netwarden.model import Executable, ProgramIdentity
    from tests.support.viewer_data import flow
    awkward = "it's a \\\"test\\\" \\\\x\x00y\nz\r\x1a é 😀 %s ? \\N \t;--"
    program = ProgramIdentity(Executable("/opt/od d'ity", "e" * 64), "odd'name", awkward, 7)
    db = tmp_path / "store.db"
    writer = SqliteWriter(db, int(time.time()), group=None, host="h")
    writer.write([flow(int(time.time()), program, "2001:db8::1", 443, 1, 2, domain=awkward)],
                 [], [HealthSample(int(time.time()), "x", awkward, -5)], int(time.time()))
    writer.close()
    shipper(server, db, tmp_path / "state.db").catch_up()
    assert_same(db, server)


def test_report_from_the_server_has_a_line_per_host(server: PostgresServer | MariadbServer,
                                                    tmp_path: Path) -> None:
    """`netwarden report --db URL`: the same week as each host's store, one line per host."""
    from netwarden.view.units import format_bytes
    now = int(time.time())
    roles = {"host_rep_a": "report-a-secret", "host_rep_b": "report-b-secret"}
    for number, (role, password) in enumerate(roles.items()):
        add_roles(server, role, password, READER_ROLE, READER_PASSWORD)
        db = tmp_path / f"{role}.db"
        seed_store(db, now - number * 3600, host=role)
        Shipper(db, SinkStateFile(tmp_path / f"{role}.state"), target(server, password, role),
                connect).catch_up()
    shared = readable_dir()
    try:
        config = reader_config(shared)
        text = netwarden("report", "--period", "week", "--until", str(now + 1), "--db",
                         server.url(READER_ROLE), "--config", str(config), "--user",
                         "nobody").stdout
    finally:
        shutil.rmtree(shared)
    # seed_store's week: 1,153,360 bytes sent and 12,093,120 received, on each host
    hosts = text.split("## Hosts")[1].split("##")[0]
    for role in roles:
        assert (f"| {role} | {format_bytes(1_153_360)} | {format_bytes(12_093_120)} | "
                f"{format_bytes(1_153_360 + 12_093_120)} |") in hosts
    new = text.split("## New programs")[1].split("##")[0]
    assert all(f"| {role} | /usr/sbin/nginx |" in new for role in roles)
