"""The store against real SQLite: migrations, the writer, and the shared read-only queries."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from netwarden.model import Event, EventKind, Executable, FlowRow, HealthSample, ProgramIdentity
from netwarden.store import schema
from netwarden.store.export_queries import EXPORT_FIELDS, export_events, export_flows, health_rows
from netwarden.store.read_source import local_source
from netwarden.store.sqlite_db import StoreUnavailable, open_readonly
from netwarden.store.sqlite_writer import SqliteWriter

CURL = Executable("/usr/bin/curl", "a" * 64)
BASH = Executable("/usr/bin/bash", "b" * 64)
SSHD = Executable("/usr/sbin/sshd", "c" * 64)


def row(time: int, program: ProgramIdentity, sent: int, recv: int, raddr: str = "1.1.1.1",
        first_seen: float = 0.0) -> FlowRow:
    return FlowRow(time=time, program=program, family=2, protocol="tcp", ip_protocol=6,
                   laddr="10.0.0.2", lport=40000, raddr=raddr, rport=443, sent=sent, recv=recv,
                   netns=4026531840, first_seen=first_seen)


PROGRAM = ProgramIdentity(exe=CURL, name="curl", cmdline="curl https://x", uid=1000,
                          parent=BASH, grandparent=SSHD)


def test_migrations_apply_once(tmp_path: Path):
    conn = sqlite3.connect(tmp_path / "db", isolation_level=None)
    assert schema.migrate(conn, 1) == [m.version for m in schema.MIGRATIONS]
    assert schema.migrate(conn, 2) == []
    assert schema.current_version(conn) == schema.LATEST_VERSION


def test_a_migration_merged_below_the_highest_is_still_applied(tmp_path: Path, monkeypatch):
    conn = sqlite3.connect(tmp_path / "db", isolation_level=None)
    later = schema.Migration(90, "late branch", ("CREATE TABLE late_a (x INTEGER)",))
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS + (later,))
    schema.migrate(conn, 1)
    earlier = schema.Migration(80, "merged later", ("CREATE TABLE late_b (x INTEGER)",))
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:-1] + (earlier, later))
    assert schema.migrate(conn, 2) == [80]
    conn.execute("SELECT x FROM late_b").fetchall()


def test_a_newer_schema_is_refused(tmp_path: Path):
    conn = sqlite3.connect(tmp_path / "db", isolation_level=None)
    schema.migrate(conn, 1)
    conn.execute("INSERT INTO schema_version VALUES (999, 'future', 0)")
    with pytest.raises(schema.SchemaTooNew):
        schema.migrate(conn, 1)


def test_round_trip_through_export(tmp_path: Path):
    writer = SqliteWriter(tmp_path / "nw.db", now=1000, group=None)
    events = writer.write([row(1000, PROGRAM, 100, 2000, first_seen=1001.5),
                           row(1000, PROGRAM, 5, 6, raddr="8.8.8.8")],
                          [Event.of(999.0, EventKind.SENSOR_STARTED, hook_set="tracepoint")],
                          [HealthSample(1000, "net", "flow_map_full", 3)], now=1001)
    # The first flow of an executable is a new_executable event, written once.
    assert [e.kind for e in events] == [EventKind.SENSOR_STARTED, EventKind.NEW_EXECUTABLE]
    writer.write([row(1010, PROGRAM, 1, 1)], [], [], now=1011)
    writer.close()

    conn = open_readonly(tmp_path / "nw.db")
    source = local_source(conn)
    flows = [f for f, _host in export_flows(source)]
    assert {host for _f, host in export_flows(source)} == {writer.host}
    assert [f.sent for f in flows] == [100, 5, 1]
    first = flows[0]._asdict()
    assert list(first)[:16] == ["time", "exe", "sha256", "name", "cmdline", "parent_exe",
                                "parent_sha256", "uid", "family", "protocol", "laddr", "lport",
                                "raddr", "rport", "sent", "recv"]
    assert tuple(first) == EXPORT_FIELDS
    assert (first["exe"], first["sha256"], first["parent_exe"], first["grandparent_exe"],
            first["family"]) == ("/usr/bin/curl", "a" * 64, "/usr/bin/bash", "/usr/sbin/sshd", "4")
    assert [f.time for f, _ in export_flows(source, since=1005)] == [1010]
    kinds = [(e.kind, e.fields.get("path")) for e, _ in export_events(source)]
    assert kinds == [("sensor_started", None), ("new_executable", "/usr/bin/curl")]
    assert [h.delta for h, _ in health_rows(source)] == [3]
    # Normalised: one executable row per (path, sha256), one process row per identity.
    assert conn.execute("SELECT COUNT(*) FROM executables").fetchone()[0] == 3
    assert conn.execute("SELECT COUNT(*) FROM processes").fetchone()[0] == 1


def test_new_executable_survives_a_writer_restart(tmp_path: Path):
    SqliteWriter(tmp_path / "nw.db", now=1, group=None).write([row(0, PROGRAM, 1, 1)], [], [], 1)
    again = SqliteWriter(tmp_path / "nw.db", now=2, group=None)
    assert again.write([row(10, PROGRAM, 1, 1)], [], [], 2) == []
    # A new version of a known program is exe_modified's news, not a new program ...
    changed = ProgramIdentity(exe=Executable("/usr/bin/curl", "d" * 64), name="curl",
                              cmdline="curl", uid=0)
    assert again.write([row(20, changed, 1, 1)], [], [], 3) == []
    # ... a program at a new path is.
    other = ProgramIdentity(exe=Executable("/usr/bin/wget", "e" * 64), name="wget",
                            cmdline="wget", uid=0)
    assert [e.kind for e in again.write([row(30, other, 1, 1)], [], [], 4)] == \
        [EventKind.NEW_EXECUTABLE]


def test_readers_cannot_write(tmp_path: Path):
    SqliteWriter(tmp_path / "nw.db", now=1, group=None).close()
    conn = open_readonly(tmp_path / "nw.db")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM flows")


def test_missing_database_says_so(tmp_path: Path):
    with pytest.raises(StoreUnavailable, match="no database at"):
        open_readonly(tmp_path / "absent.db")


def test_database_files_are_not_world_readable(tmp_path: Path):
    SqliteWriter(tmp_path / "nw.db", now=1, group=None).close()
    assert (tmp_path / "nw.db").stat().st_mode & 0o007 == 0


def test_a_closed_database_opens_for_readers_who_cannot_create_files():
    """After the last writer closes, a reader without write access to the directory must
    still open it (a WAL database would need a -shm file created next to it)."""
    import os
    import shutil
    import tempfile
    if os.geteuid() != 0:
        pytest.skip("needs root to read as another user")
    base = Path(tempfile.mkdtemp(prefix="nwstore-"))   # /tmp/...: nobody may traverse it
    os.chmod(base, 0o755)
    directory = base / "lib"
    directory.mkdir(mode=0o755)
    writer = SqliteWriter(directory / "nw.db", now=1, group=None)
    writer.write([row(0, PROGRAM, 1, 2)], [], [], 1)
    writer.close()
    assert sorted(p.name for p in directory.iterdir()) == ["nw.db"]
    os.chmod(directory / "nw.db", 0o644)
    child = os.fork()
    if child == 0:      # as nobody: may read the file, may not create anything beside it
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            conn = open_readonly(directory / "nw.db")
            os._exit(0 if [f.sent for f, _ in export_flows(local_source(conn))] == [1] else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The next writer turns WAL on again.
    again = SqliteWriter(directory / "nw.db", now=2, group=None)
    assert again._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()
    shutil.rmtree(base)


def test_a_writer_starts_while_a_reader_holds_the_rollback_mode_database(tmp_path: Path):
    """After a clean stop the file is in rollback mode; a viewer may be mid-read when the
    sensor starts again: the sensor waits for it and turns WAL on."""
    import threading
    first = SqliteWriter(tmp_path / "nw.db", now=1, group=None)
    first.write([row(0, PROGRAM, 1, 2)], [], [], 1)
    first.close()
    reader = sqlite3.connect(tmp_path / "nw.db", check_same_thread=False)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM flows").fetchone()     # holds a shared lock
    threading.Timer(0.5, reader.rollback).start()
    again = SqliteWriter(tmp_path / "nw.db", now=2, group=None)  # waits for the reader
    assert again._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()
    reader.close()
