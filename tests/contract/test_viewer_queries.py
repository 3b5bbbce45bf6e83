"""The viewers' shared queries against a real SQLite store written by the real writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from netwarden.store import event_queries, read_source, traffic_queries
from netwarden.store.read_source import local_source
from netwarden.store.sqlite_db import open_readonly
from netwarden.store.traffic_queries import Filter, QueryError, TrafficView
from tests.support.viewer_data import seed_store

NOW = 1_700_000_000
HOUR = TrafficView(NOW - 3600, NOW + 1)


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory):
    path: Path = tmp_path_factory.mktemp("viewq") / "nw.db"
    seed_store(path, NOW)
    connection = open_readonly(path)
    yield connection
    connection.close()


def totals(conn, dimension: str, view: TrafficView = HOUR) -> dict[object, tuple[int, int]]:
    return {r.value: (r.sent, r.recv)
            for r in traffic_queries.traffic_totals(conn, dimension, view)}


def test_every_grouping_sums_the_last_hour(conn):
    assert totals(conn, "exe") == {"/usr/lib/firefox/firefox": (50_000, 3_000_000),
                                   "/usr/sbin/nginx": (700_000, 9_000),
                                   "/usr/sbin/sshd": (400_000, 30_000),
                                   "/usr/bin/curl": (1_060, 50_120)}
    assert totals(conn, "name")["curl"] == (1_060, 50_120)
    assert totals(conn, "sha256")["f" * 64] == (50_000, 3_000_000)
    assert totals(conn, "parent") == {"/usr/lib/systemd/systemd": (1_150_000, 3_039_000),
                                      "/usr/bin/bash": (1_060, 50_120)}
    assert totals(conn, "domain") == {"www.google.com": (50_000, 3_000_000),
                                      "example.org": (1_000, 50_000),
                                      "": (1_100_060, 39_120)}
    assert totals(conn, "raddr")["8.8.8.8"] == (60, 120)
    assert totals(conn, "rport")[443] == (51_000, 3_050_000)
    assert totals(conn, "lport")[22] == (400_000, 30_000)
    assert totals(conn, "user") == {1000: (51_060, 3_050_120), 33: (700_000, 9_000),
                                    0: (400_000, 30_000)}
    assert totals(conn, "container") == {"": (451_060, 3_080_120), "web1": (700_000, 9_000)}
    assert totals(conn, "host") == {"testhost": (1_151_060, 3_089_120)}


def test_totals_come_largest_first_with_first_and_last_seen(conn):
    rows = traffic_queries.traffic_totals(conn, "exe", HOUR)
    assert [r.value for r in rows][:2] == ["/usr/lib/firefox/firefox", "/usr/sbin/nginx"]
    assert (rows[0].first_seen, rows[0].last_seen) == (NOW - 1200, NOW - 300)


def test_windows_select_by_window_start(conn):
    assert set(totals(conn, "exe", TrafficView(NOW - 86400 * 3, NOW - 86400))) == {
        "/usr/bin/apt", "/usr/bin/curl"}
    assert totals(conn, "exe", TrafficView(NOW + 1, NOW + 100)) == {}
    assert totals(conn, "exe", TrafficView())["/usr/bin/curl"] == (1_360, 54_120)


def test_include_filters_or_within_a_grouping_and_across_groupings(conn):
    both = TrafficView(NOW - 3600, NOW + 1, (Filter("exe", "/usr/bin/curl"),
                                             Filter("exe", "/usr/sbin/sshd")))
    assert set(totals(conn, "exe", both)) == {"/usr/bin/curl", "/usr/sbin/sshd"}
    narrowed = TrafficView(NOW - 3600, NOW + 1, both.filters + (Filter("rport", "53"),))
    assert totals(conn, "raddr", narrowed) == {"8.8.8.8": (60, 120)}


def test_exclude_filters_and_the_unknown_domain(conn):
    no_curl = TrafficView(NOW - 3600, NOW + 1, (Filter("exe", "/usr/bin/curl", True),))
    assert "/usr/bin/curl" not in totals(conn, "exe", no_curl)
    unknown = TrafficView(NOW - 3600, NOW + 1, (Filter("domain", ""),))
    assert set(totals(conn, "exe", unknown)) == {"/usr/sbin/nginx", "/usr/sbin/sshd",
                                                 "/usr/bin/curl"}
    known = TrafficView(NOW - 3600, NOW + 1, (Filter("domain", "", True),))
    assert set(totals(conn, "domain", known)) == {"www.google.com", "example.org"}
    host_only = TrafficView(NOW - 3600, NOW + 1, (Filter("container", ""),))
    assert "/usr/sbin/nginx" not in totals(conn, "exe", host_only)
    by_user = TrafficView(NOW - 3600, NOW + 1, (Filter("user", "0"),
                                                Filter("parent", "", exclude=True)))
    assert set(totals(conn, "exe", by_user)) == {"/usr/sbin/sshd"}


def test_bad_filters_are_refused_before_any_sql():
    with pytest.raises(QueryError, match="must be a number"):
        Filter("rport", "https")
    with pytest.raises(QueryError, match="unknown grouping"):
        Filter("colour", "red")


def test_series_buckets_from_the_origin(conn):
    points = traffic_queries.traffic_series(conn, "exe", HOUR, NOW - 3600, 600)
    firefox = [(p.time, p.sent, p.recv) for p in points if p.value == "/usr/lib/firefox/firefox"]
    assert firefox == [(NOW - 1200, 20_000, 1_000_000), (NOW - 600, 30_000, 2_000_000)]
    assert sum(p.sent + p.recv for p in points) == 1_151_060 + 3_089_120


def test_flow_rows_bounds_executables_and_versions(conn):
    flows = traffic_queries.view_flows(conn, HOUR, limit=2)
    assert [f.exe for f in flows] == ["/usr/sbin/sshd", "/usr/sbin/nginx"]
    assert flows[0].family == "4" and flows[0].lport == 22
    assert [f.exe for f in traffic_queries.view_flows(conn, HOUR, limit=2, offset=2)] == [
        "/usr/lib/firefox/firefox", "/usr/bin/curl"]
    assert traffic_queries.flow_time_bounds(conn) == (NOW - 3 * 86400, NOW - 100)
    rows = traffic_queries.view_executables(conn, TrafficView())
    assert [(r.path, r.sha256[:1]) for r in rows][-2:] == [("/usr/bin/curl", "c"),
                                                           ("/usr/bin/curl", "0")]
    versions = traffic_queries.executable_versions(conn, "/usr/bin/curl")
    assert [(v.sha256[:1], v.first_traffic, v.sent) for v in versions] == [
        ("0", NOW - 3 * 86400, 300), ("c", NOW - 600, 1_060)]
    assert traffic_queries.executable_versions(conn, "/nope") == []


def test_events_by_kind_path_and_time(conn):
    modified = event_queries.view_events(conn, kinds=("exe_modified",))
    assert [(e.kind, e.fields["old_sha256"][:1], e.host) for e in modified] == [
        ("exe_modified", "0", "testhost")]
    about_curl = event_queries.view_events(conn, path="/usr/bin/curl")
    # The newer curl is a new version of a known program: exe_modified, not new_executable.
    assert [e.kind for e in about_curl] == ["exe_modified", "new_executable"]
    assert all(a.id > b.id for a, b in zip(about_curl, about_curl[1:], strict=False))
    assert event_queries.view_events(conn, since=NOW) == []
    assert len(event_queries.view_events(conn, limit=1)) == 1
    assert read_source.schema_version(conn) >= 1


def test_the_hour_query_uses_the_time_index(conn):
    where, params = traffic_queries._where(local_source(conn), HOUR)
    plan = " ".join(row[-1] for row in conn.execute(
        f"EXPLAIN QUERY PLAN SELECT f.process_id, SUM(f.sent) FROM flows f WHERE {where} "
        "GROUP BY f.process_id", params))
    assert "flows_time" in plan
