"""The baseline against real SQLite: both writers learn, then raise one drift per new thing;
approve and revoke move items; readers see the mode; the notifier holds learning events back."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from netwarden.model import EventKind, Executable, FlowRow, ProgramIdentity
from netwarden.model.baseline import DriftKind, ItemStatus, ListeningPort, Mode
from netwarden.notify.notices import render_event
from netwarden.store import schema
from netwarden.store.baseline import (
    AmbiguousKey, BaselineStore, ItemNotFound, NotLearning, baseline_summary, count_items,
    list_items, read_mode,
)
from netwarden.store.discovery_writer import DiscoveryWriter
from netwarden.store.sqlite_db import open_readonly
from netwarden.store.sqlite_writer import SqliteWriter
from tests.support.device_data import GAP, _hue, _pi, _scan

CURL = ProgramIdentity(Executable("/usr/bin/curl", "a" * 64), "curl", "curl x", 1000)
WGET = ProgramIdentity(Executable("/usr/bin/wget", "b" * 64), "wget", "wget x", 1000)
T0 = 1_800_000_000


def flow(program: ProgramIdentity, raddr: str, domain: str = "", lport: int = 40000
         ) -> FlowRow:
    return FlowRow(time=T0, program=program, family=2, protocol="tcp", ip_protocol=6,
                   laddr="10.0.0.2", lport=lport, raddr=raddr, rport=443, sent=1, recv=1,
                   domain=domain)


def drifts(events) -> list[tuple[str, str]]:
    return [(e.field_dict()["drift"], e.field_dict()["key"]) for e in events
            if e.kind is EventKind.DRIFT]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


def test_migration_6_makes_the_tables_and_stands_without_5(db: Path):
    """A store migrated to 6 before migration 5 (the watch's, from another branch) existed:
    6 stands alone, and 5 is applied below it when it arrives."""
    conn = sqlite3.connect(db, isolation_level=None)
    schema.migrate(conn, 1, upto=4)
    six = next(m for m in schema.MIGRATIONS if m.version == 6)
    for statement in six.statements:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version VALUES (6, ?, 1)", (six.description,))
    assert 5 not in schema.applied_versions(conn) and 6 in schema.applied_versions(conn)
    conn.execute("SELECT host_id, started, learning_until, revision FROM baseline_mode")
    conn.execute("SELECT id, kind, key, status, data, first_seen, updated FROM baseline")
    applied = schema.migrate(conn, 2)        # 5 below it, and whatever came after 6
    assert applied[0] == 5 and 6 not in applied
    conn.execute("SELECT id, name, probe, group_name, is_group FROM watch_targets")


def test_off_until_learn_then_learning_then_drift(db: Path):
    writer = SqliteWriter(db, T0, group=None, host="h")
    events = writer.write([flow(CURL, "1.1.1.1")], [], [], T0)
    assert read_mode(open_readonly(db), T0).mode is Mode.OFF
    assert drifts(events) == [] and list_items(open_readonly(db)) == []

    cli = BaselineStore(db, T0, group=None, host="h")
    assert cli.learn(T0 + 1, 1).mode is Mode.LEARNING
    listening = [ListeningPort("tcp", 22, "0.0.0.0", "/usr/sbin/sshd", "sshd")]
    events = writer.write([flow(WGET, "9.9.9.9", domain="example.org")], [], [], T0 + 2,
                          listening=listening)
    new = [e for e in events if e.kind is EventKind.NEW_EXECUTABLE]
    assert [e.field_dict()["baseline"] for e in new] == ["learning"]
    assert render_event(1, T0, "new_executable", new[0].field_dict()) is None
    assert drifts(events) == []
    keys = {(i.kind, i.key, i.status) for i in list_items(open_readonly(db))}
    assert keys == {(DriftKind.NEW_PROGRAM, "/usr/bin/wget", ItemStatus.LEARNED),
                    (DriftKind.NEW_DESTINATION, "/usr/bin/wget example.org", ItemStatus.LEARNED),
                    (DriftKind.NEW_LISTEN_PORT, "tcp/22", ItemStatus.LEARNED)}

    cli.finish(T0 + 3)
    with pytest.raises(NotLearning):
        cli.finish(T0 + 3)
    assert read_mode(open_readonly(db), T0 + 4).mode is Mode.ENFORCING
    listening.append(ListeningPort("tcp", 8080, "0.0.0.0", "/usr/bin/python3", "python3"))
    # wget again to the learned name, plus a new address; curl (before learning) is new;
    # a client of sshd's port 22 is not a destination of sshd.
    sshd = ProgramIdentity(Executable("/usr/sbin/sshd", "c" * 64), "sshd", "sshd", 0)
    rows = [flow(WGET, "9.9.9.9", domain="example.org"), flow(WGET, "8.8.8.8"),
            flow(CURL, "1.1.1.1"), flow(sshd, "10.0.0.9", lport=22)]
    events = writer.write(rows, [], [], T0 + 5, listening=listening)
    # curl's destination is drift too, told by curl's own event (one notice per program).
    assert sorted(drifts(events)) == [
        ("new_destination", "/usr/bin/wget 8.8.8.8"), ("new_listen_port", "tcp/8080"),
        ("new_program", "/usr/bin/curl"), ("new_program", "/usr/sbin/sshd")]
    held = list_items(open_readonly(db), DriftKind.NEW_DESTINATION, ItemStatus.DRIFT)
    assert [i.key for i in held] == ["/usr/bin/wget 8.8.8.8", "/usr/bin/curl 1.1.1.1"]
    summary = baseline_summary(open_readonly(db), T0 + 5)
    assert summary is not None and summary.drift == 4    # as notified: curl's dest goes with it
    port = next(e for e in events if e.field_dict().get("drift") == "new_listen_port")
    notice = render_event(7, T0 + 5, "drift", port.field_dict())
    assert notice is not None and "8080" in notice.body and "python3" in notice.body
    assert notice.title == "New listening port outside the baseline"
    # The same things again: no second drift, from a new writer (no cache) too.
    assert drifts(writer.write(rows, [], [], T0 + 6, listening=listening)) == []
    writer.close()
    writer = SqliteWriter(db, T0, group=None, host="h")
    assert drifts(writer.write(rows, [], [], T0 + 7, listening=listening)) == []

    assert cli.approve("/usr/bin/curl", T0 + 8).status is ItemStatus.APPROVED
    assert [i.key for i in list_items(open_readonly(db), DriftKind.NEW_DESTINATION,
                                      ItemStatus.APPROVED)] == ["/usr/bin/curl 1.1.1.1"]
    item = cli.approve("tcp/8080", T0 + 8)
    assert item.status is ItemStatus.APPROVED
    assert count_items(open_readonly(db))[("new_listen_port", "approved")] == 1
    revoked = cli.revoke("/usr/bin/curl", T0 + 9, DriftKind.NEW_PROGRAM)
    assert revoked.kind is DriftKind.NEW_PROGRAM
    # The writer's cache follows the revocation: curl drifts again, once.
    assert drifts(writer.write(rows, [], [], T0 + 10, listening=listening)) == \
        [("new_program", "/usr/bin/curl")]
    with pytest.raises(ItemNotFound):
        cli.approve("/no/such", T0)
    cli.close()
    writer.close()


def test_a_key_of_two_kinds_needs_the_kind(db: Path):
    cli = BaselineStore(db, T0, group=None, host="h")
    cli.learn(T0, 1)
    conn = sqlite3.connect(db, isolation_level=None)
    for kind in ("new_program", "new_device"):
        conn.execute("INSERT INTO baseline (host_id, kind, key, status, data, first_seen, "
                     "updated) VALUES (1, ?, 'x', 'drift', '{}', 1, 1)", (kind,))
    with pytest.raises(AmbiguousKey, match="new_program"):
        cli.approve("x", T0)
    assert cli.approve("x", T0, DriftKind.NEW_DEVICE).kind is DriftKind.NEW_DEVICE


def test_discovery_learns_devices_and_ports_then_drifts(db: Path):
    cli = BaselineStore(db, T0, group=None, host="h")
    writer = DiscoveryWriter(db, T0, group=None, host="h")
    cli.learn(T0, 1)
    events = writer.record_scan(_scan(T0 + 1, _pi(T0 + 1)), GAP, {})
    assert [e.kind for e in events] == [EventKind.NEW_DEVICE]
    assert events[0].field_dict()["baseline"] == "learning"
    assert render_event(1, T0, "new_device", events[0].field_dict()) is None
    assert {i.key for i in list_items(open_readonly(db))} == \
        {"b8:27:eb:12:34:56", "b8:27:eb:12:34:56 tcp/22", "b8:27:eb:12:34:56 tcp/80"}
    cli.finish(T0 + 2)
    pi = replace(_pi(T0 + 3), open_ports=(22, 80, 8443))
    events = writer.record_scan(_scan(T0 + 3, pi, _hue(T0 + 3)), GAP, {})
    assert sorted(drifts(events)) == [
        ("new_device", "00:17:88:01:02:03"), ("new_device_port", "00:17:88:01:02:03 tcp/443"),
        ("new_device_port", "00:17:88:01:02:03 tcp/80"),
        ("new_device_port", "b8:27:eb:12:34:56 tcp/8443")]
    changed = next(e for e in events if e.kind is EventKind.DEVICE_CHANGED)
    assert "baseline" not in changed.field_dict()
    new = next(e for e in events if e.kind is EventKind.NEW_DEVICE)
    assert new.field_dict()["baseline"] == "enforcing"       # its drift event tells it
    assert render_event(2, T0, "new_device", new.field_dict()) is None
    stored = open_readonly(db).execute("SELECT data FROM events WHERE kind = 'drift'").fetchall()
    assert {json.loads(d)["drift"] for (d,) in stored} == {"new_device", "new_device_port"}
