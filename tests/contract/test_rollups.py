"""Rollups answer exactly what summing the raw rows answers (issue 24's property test).

Random stores written by the real SqliteWriter (flows over several days, several processes,
domains, addresses and hosts), random windows (unaligned edges, empty, single hours, whole
days, open ends), random groupings, include/exclude filters and series buckets: every query
with rollups equals the same query forced to raw rows (``TrafficView(rollups=False)``), on
SQLite, after retention pruned some, after migration 7 built the rollups of an existing
store, and on a PostgreSQL server the stores were shipped to (its rollups kept by trigger).
Seeded, so a failure repeats; bounded, so it takes seconds.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from netwarden.config import parse_remote_url
from netwarden.model import Executable, FlowRow, ProgramIdentity
from netwarden.sink.shipper import Shipper
from netwarden.store import rollups, schema
from netwarden.store import traffic_queries as tq
from netwarden.store.read_source import ReadSource, local_source
from netwarden.store.remote_db import RemoteTarget, connect, open_reader
from netwarden.store.sink_state import SinkStateFile
from netwarden.store.sqlite_writer import SqliteWriter
from tests.support.sql_servers import (
    PostgresServer,
    add_roles,
    admin_password_file,
    provisioned,
)

DAY, HOUR = 86400, 3600
START = 1_700_006_400 - 3 * HOUR - 170      # not aligned to an hour or a day
SPAN_DAYS = 5
HOSTS = ("alpha", "beta")
GROUPINGS = tuple(tq.DIMENSIONS)


def programs(rng: random.Random) -> list[ProgramIdentity]:
    exes = [Executable(f"/usr/bin/prog{i}", f"{i}".ljust(64, "a")) for i in range(6)]
    exes.append(Executable("/usr/bin/prog0", "1".ljust(64, "b")))    # a second version
    return [ProgramIdentity(rng.choice(exes), f"name{i % 4}", f"cmd {i}", rng.choice((0, 1000)),
                            parent=rng.choice([None, *exes[:2]]),
                            container=rng.choice(("", "", "web1")))
            for i in range(10)]


DOMAINS = ("", "", "example.org", "a.example.com", "b.example.net")
ADDRESSES = tuple(f"192.0.2.{i}" for i in range(1, 9))


def random_flow(rng: random.Random, when: int, progs: list[ProgramIdentity]) -> FlowRow:
    return FlowRow(time=when, program=rng.choice(progs), family=2, protocol="tcp",
                   ip_protocol=6, laddr="10.0.0.2", lport=rng.choice((22, 80, 40000, 40001)),
                   raddr=rng.choice(ADDRESSES), rport=rng.choice((53, 443, 51000)),
                   sent=rng.randint(0, 5000), recv=rng.randint(0, 90000),
                   domain=rng.choice(DOMAINS))


def write_store(path: Path, seed: int, windows: int = 400) -> None:
    """Windows at random 10 s starts over SPAN_DAYS days, each host's in time order, each with
    a few flows (some windows repeat a time: a restarted sensor)."""
    rng = random.Random(seed)
    progs = programs(rng)
    for host in HOSTS:
        writer = SqliteWriter(path, START, group=None, host=host)
        times = sorted(START + rng.randrange(SPAN_DAYS * DAY // 10) * 10 for _ in range(windows))
        for when in times:
            rows = [random_flow(rng, when, progs) for _ in range(rng.randint(1, 4))]
            writer.write(rows, [], [], when)
        writer.close()


def random_bound(rng: random.Random) -> int:
    base = START - START % DAY + rng.randint(-1, SPAN_DAYS + 1) * DAY
    return base + rng.choice((0, 0, rng.randint(0, 23) * HOUR, rng.randrange(DAY),
                              rng.randint(0, 23) * HOUR + rng.choice((-10, 10))))


def random_window(rng: random.Random) -> tuple[int | None, int | None]:
    kind = rng.random()
    if kind < 0.1:
        return None, None
    since = random_bound(rng)
    if kind < 0.2:
        return since, None
    if kind < 0.3:
        return None, since
    if kind < 0.4:       # a single hour, or an empty window
        return since - since % HOUR, since - since % HOUR + rng.choice((HOUR, 0))
    return tuple(sorted((since, random_bound(rng))))  # type: ignore[return-value]


def random_filters(rng: random.Random, source: ReadSource) -> tuple[tq.Filter, ...]:
    filters = []
    for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
        dim = rng.choice(GROUPINGS)
        values = [t.value for t in tq.traffic_totals(source, dim, tq.TrafficView(rollups=False))]
        if values:
            filters.append(tq.Filter(dim, str(rng.choice(values)), rng.random() < 0.3))
    return tuple(filters)


def check_views(source: ReadSource, seed: int, cases: int) -> int:
    """Random views: rollups == raw rows; returns how many of them read rollups."""
    rng = random.Random(seed)
    used = 0
    for case in range(cases):
        since, until = random_window(rng)
        view = tq.TrafficView(since, until, random_filters(rng, source))
        raw = replace(view, rollups=False)
        dim = rng.choice(GROUPINGS)
        why = f"case {case}: {dim} {view}"
        used += tq.reads_rollups(source, dim, view)
        assert tq.traffic_totals(source, dim, view) == tq.traffic_totals(source, dim, raw), why
        origin = random_bound(rng) if rng.random() < 0.5 else (since or START) // HOUR * HOUR
        bucket = rng.choice((600, 900, 1800, HOUR, 4 * HOUR, 6 * HOUR, DAY, 2 * DAY))
        if rng.random() < 0.5:
            origin -= origin % bucket if bucket <= DAY else origin % DAY
        assert tq.traffic_series(source, dim, view, origin, bucket) == \
            tq.traffic_series(source, dim, raw, origin, bucket), f"{why} {origin} {bucket}"
        used += tq.reads_rollups(source, dim, view, origin, bucket)
        assert tq.view_executables(source, view) == tq.view_executables(source, raw), why
    return used


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rollups") / "store.db"
    write_store(path, seed=24)
    return path


def test_rollups_equal_raw_sums_on_sqlite(store: Path) -> None:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        used = check_views(local_source(conn), seed=1, cases=150)
    finally:
        conn.close()
    # Many views read rollups (of 300 queries; the rest group or filter on ports or mix
    # families), or the comparison would compare raw rows with themselves.
    assert used >= 75


def test_whole_ranges_read_rollups_and_what_falls_back(store: Path) -> None:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    everything = tq.TrafficView()
    curl_domains = tq.TrafficView(filters=(tq.Filter("exe", "/usr/bin/prog1"),))
    try:
        assert tq.reads_rollups(conn, "exe", everything)
        assert tq.reads_rollups(conn, "domain", everything)
        assert tq.reads_rollups(conn, "raddr", tq.TrafficView(START, START + 3 * DAY))
        assert tq.reads_rollups(conn, "host", curl_domains)
        assert not tq.reads_rollups(conn, "domain", curl_domains)      # two families
        assert not tq.reads_rollups(conn, "rport", everything)         # no port rollup
        assert not tq.reads_rollups(conn, "exe", tq.TrafficView(START, START + 600))
        assert not tq.reads_rollups(conn, "domain", tq.TrafficView(START, START + 1800))
        assert not tq.reads_rollups(conn, "exe", replace(everything, rollups=False))
        # A series reads rollups only when its buckets hold whole periods.
        assert tq.reads_rollups(conn, "exe", everything, START - START % DAY, 4 * HOUR)
        assert not tq.reads_rollups(conn, "exe", everything, START, 4 * HOUR)
        assert not tq.reads_rollups(conn, "exe", everything, START - START % DAY, 600)
    finally:
        conn.close()


def rollup_rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {r.table: conn.execute(f"SELECT * FROM {r.table} ORDER BY 1, 2, 3").fetchall()
                for r in rollups.ROLLUPS}
    finally:
        conn.close()


def test_migration_7_builds_the_rollups_a_writer_keeps(store: Path, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """An existing store (its rollups dropped, as before version 7) gets the same rollups
    from the migration as the writer kept window by window, and says how far it is."""
    copy = tmp_path / "old.db"
    copy.write_bytes(store.read_bytes())
    conn = sqlite3.connect(copy, isolation_level=None)
    for rollup in rollups.ROLLUPS:
        conn.execute(f"DROP TABLE {rollup.table}")
    conn.execute("DELETE FROM schema_version WHERE version = 7")
    with caplog.at_level("WARNING", logger="netwarden.store.rollups"):
        assert schema.migrate(conn, int(time.time())) == [7]
    conn.close()
    assert rollup_rows(copy) == rollup_rows(store)
    assert any(f"day {SPAN_DAYS + 1} of {SPAN_DAYS + 1}" in r.message for r in caplog.records)


def test_retention_takes_pruned_flows_out_of_the_rollups(store: Path, tmp_path: Path) -> None:
    copy = tmp_path / "pruned.db"
    copy.write_bytes(store.read_bytes())
    writer = SqliteWriter(copy, START, group=None, host=HOSTS[0])
    cutoff = START + 2 * DAY + 5000
    while writer.prune_before(cutoff, batch=97).deleted:
        pass
    writer.close()
    conn = sqlite3.connect(copy)
    try:
        oldest = conn.execute("SELECT MIN(time) FROM flows").fetchone()[0]
        assert oldest >= cutoff - cutoff % DAY > START        # whole days went, no more
        assert conn.execute("SELECT MIN(time) FROM rollup_process_hour").fetchone()[0] >= \
            cutoff - cutoff % DAY
        assert check_views(local_source(conn), seed=2, cases=40) >= 20
    finally:
        conn.close()


# ---- PostgreSQL: the server keeps its own rollups from the rows it inserts ----

PG_HOSTS = (("host_one", "one-secret-1"), ("host_two", "two-secret-2"))
PG_READER = ("rollup_reader", "reader-secret-3")


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory, store: Path) -> Iterator[PostgresServer]:
    """A server holding two hosts' stores (one the store above), shipped by the real sink in
    small batches (many trigger runs), the first one twice (a resend must count nothing)."""
    with provisioned("postgresql", *PG_HOSTS[0], *PG_READER) as srv:
        assert isinstance(srv, PostgresServer)
        add_roles(srv, *PG_HOSTS[1], *PG_READER)
        other = tmp_path_factory.mktemp("rollups-pg") / "other.db"
        write_store(other, seed=25, windows=200)
        for (role, password), db in zip(PG_HOSTS, (store, other)):
            ship(srv, role, password, db, tmp_path_factory.mktemp("state") / "s.db")
        ship(srv, *PG_HOSTS[0], store, tmp_path_factory.mktemp("state") / "again.db")
        yield srv


def ship(srv: PostgresServer, role: str, password: str, db: Path, state: Path) -> None:
    target = RemoteTarget(parse_remote_url(srv.url(role)), password)
    Shipper(db, SinkStateFile(state), target, connect, batch_rows=500).catch_up()


def server_reader(srv: PostgresServer) -> ReadSource:
    return open_reader(RemoteTarget(parse_remote_url(srv.url(PG_READER[0])), PG_READER[1]))


def test_rollups_equal_raw_sums_on_postgresql(postgres: PostgresServer) -> None:
    source = server_reader(postgres)
    try:
        assert len(tq.traffic_totals(source, "host", tq.TrafficView(rollups=False))) == 2
        assert check_views(source, seed=3, cases=60) >= 30
    finally:
        source.close()


def test_a_version_2_server_gets_rollups_of_the_flows_it_holds(
        postgres: PostgresServer) -> None:
    """--init-schema on a server without rollups (version 2) builds them from its flows:
    the same rows the trigger kept while the sink shipped."""
    tables = [r.table for r in rollups.ROLLUPS]
    admin = postgres.admin()
    cur = admin.cursor()
    kept = {t: sorted(cur.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}
    assert all(kept.values())
    cur.execute("DROP TRIGGER flows_rollups ON flows")
    for table in tables:
        cur.execute(f"DROP TABLE {table}")
    cur.execute("DELETE FROM schema_version WHERE version = 3")
    admin.commit()
    provision_schema(postgres)
    assert {t: sorted(cur.execute(f"SELECT * FROM {t}").fetchall()) for t in tables} == kept
    admin.close()
    source = server_reader(postgres)
    try:
        assert check_views(source, seed=4, cases=20) >= 10
    finally:
        source.close()


def provision_schema(srv: PostgresServer) -> None:
    subprocess.run([sys.executable, "-m", "netwarden", "sink", "--init-schema", "--admin-url",
                    srv.admin_url(), "--user", "nobody", "--admin-password-file",
                    str(admin_password_file(srv.directory))], check=True, capture_output=True,
                   timeout=120)
