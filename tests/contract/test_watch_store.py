"""The connectivity watch's store: windows, events, samples written by the real watcher and
writer (from a scripted series of results), read back by the queries both viewers, the CLI,
the metrics and the report use; a restart resumes the state it left."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from netwarden.config import config_from_dict
from netwarden.discovery.watch import Watcher
from netwarden.metrics.counting import StoreCounter
from netwarden.metrics.scrape import scrape
from netwarden.model.watch import ProbeResult, WatchTarget
from netwarden.stopper import Stopper
from netwarden.store import watch_queries as q
from netwarden.store.watch_writer import WatchWriter
from tests.support.watch_data import TARGETS, seed_watch

NOW = 1_796_600_000.0


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "nw.db"
    seed_watch(path, NOW)
    return path


def test_windows_events_and_samples(db: Path):
    conn = sqlite3.connect(db)
    events = [(kind, json.loads(data)) for kind, data in
              conn.execute("SELECT kind, data FROM events ORDER BY id")]
    assert [(k, f["target"]) for k, f in events] == [
        ("target_down", "gw"), ("target_up", "gw"),
        ("target_down", "internet"), ("target_up", "internet")]
    gw_down, gw_up = events[0][1], events[1][1]
    assert (gw_down["since"], gw_down["reason"], gw_down["group"]) == (NOW - 7200, "timed out",
                                                                      "")
    assert (gw_up["down_since"], gw_up["downtime_s"]) == (NOW - 7200, 600.0)
    assert events[2][1]["members"] == ["web", "dns"]
    # 180 rounds of three probes each, every one kept; failed ones without a latency
    assert conn.execute("SELECT COUNT(*), COUNT(latency_ms) FROM watch_samples").fetchone() \
        == (540, 540 - 10 - 10 - 5)


def test_outages_and_their_summary(db: Path):
    conn = sqlite3.connect(db)
    found = [(o.name, o.start, o.end) for o in q.outages(conn)]
    assert found == [("dns", NOW - 3600, NOW - 3300), ("internet", NOW - 3600, NOW - 3300),
                     ("web", NOW - 3600, NOW - 3300), ("gw", NOW - 7200, NOW - 6600),
                     ("web", NOW - 9000, NOW - 8700)]
    assert [o.name for o in q.outages(conn, since=NOW - 3000)] == []
    summary = {s.name: s for s in q.outage_summary(conn, NOW - 8800, NOW)}
    assert (summary["web"].count, summary["web"].total_s, summary["web"].longest_s) == \
        (2, 100 + 300, 300)                                # the first one clipped to the span
    assert summary["internet"].is_group and summary["internet"].total_s == 300


def test_status_uptime_and_latency(db: Path):
    conn = sqlite3.connect(db)
    rows = {r.name: r for r in q.statuses(conn, NOW)}
    assert list(rows) == ["internet", "gw", "dns", "web"]       # groups first
    gw = rows["gw"]
    assert (gw.state, gw.since, gw.last_probe) == ("up", NOW - 6600, NOW - 60)
    assert gw.last_latency_ms == 1.0 and gw.avg_latency_ms == pytest.approx(1.0)
    # watched for 3 h (its first window starts at the first probe), down 10 min of them
    assert gw.uptime_day == pytest.approx(1 - 600 / 10800)
    assert gw.uptime_week == gw.uptime_day
    assert rows["web"].uptime_day == pytest.approx(1 - 600 / 10800)
    assert rows["internet"].uptime_day == pytest.approx(1 - 300 / 10800)
    latency = q.latency_samples(conn, NOW - 600, "web")
    assert [ms for _, _, ms in latency] == [20.0] * 10


def test_a_restart_resumes_an_outage_without_a_second_alarm(db: Path):
    config = config_from_dict({"watch": {"target": TARGETS}}).watch
    clock = [NOW]

    def down(target: WatchTarget) -> ProbeResult:
        return ProbeResult(target.name, clock[0], target.name != "gw", 0.001, "timed out")

    def rounds(n: int) -> None:
        writer = WatchWriter(db, NOW, group=None, host="testhost")
        watcher = Watcher(config, writer, Stopper(), clock=lambda: clock[0],
                          local_now=lambda: dt.datetime.fromtimestamp(clock[0]).astimezone(),
                          probe=down, workers=1)
        for _ in range(n):
            watcher.run_round(watcher.targets)
            clock[0] += 60
        writer.close()
    rounds(4)           # gw goes down
    rounds(4)           # a restart: gw is still down, and known to be
    conn = sqlite3.connect(db)
    kinds = [k for (k,) in conn.execute("SELECT kind FROM events WHERE time >= ?", (NOW,))]
    assert kinds == ["target_down"]
    assert [o.end for o in q.outages(conn, since=NOW)] == [None]     # still going


def test_metrics(db: Path):
    counter = StoreCounter(top_n=5, clock=lambda: NOW)
    text = scrape(counter, db)
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for fam in text_string_to_metric_families(text) for s in fam.samples}

    def key(name: str, target: str, probe: str, **more: str) -> tuple[str, tuple]:  # type: ignore[type-arg]
        labels = {"group": "", "probe": probe, "target": target, **more}
        return name, tuple(sorted(labels.items()))
    gw = ("gw", "icmp:192.0.2.1")
    assert found[key("netwarden_watch_target_up", *gw)] == 1
    assert found[key("netwarden_watch_target_latency_seconds", *gw, stat="last")] == 0.001
    assert found[key("netwarden_watch_target_uptime_ratio", *gw, span="day")] == \
        pytest.approx(1 - 600 / 10800)
    group = ("internet", "group")
    assert found[key("netwarden_watch_target_up", *group)] == 1
    assert key("netwarden_watch_target_latency_seconds", *group, stat="last") not in found


def test_status_cli_reads_the_store(db: Path, tmp_path: Path):
    import subprocess
    import sys
    config = tmp_path / "c.toml"
    config.write_text('[store]\ngroup = ""\nowner = ""\n')
    done = subprocess.run([sys.executable, "-m", "netwarden", "watch", "status", "--json",
                           "--db", str(db), "--config", str(config)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["name"], r["state"]) for r in rows] == [
        ("internet", "up"), ("gw", "up"), ("dns", "up"), ("web", "up")]
    assert rows[1]["probe"] == "icmp:192.0.2.1" and rows[1]["last_latency_ms"] == 1.0


def test_a_round_that_cannot_be_written_changes_nothing(db: Path):
    """The store locked by another writer for longer than the busy timeout: the round fails,
    the watcher's memory stays as the store has it."""
    config = config_from_dict({"watch": {"target": TARGETS}}).watch
    clock = [NOW]
    writer = WatchWriter(db, NOW, group=None, host="testhost")
    writer._conn.execute("PRAGMA busy_timeout = 100")
    watcher = Watcher(config, writer, Stopper(), clock=lambda: clock[0],
                      local_now=lambda: dt.datetime.fromtimestamp(clock[0]).astimezone(),
                      probe=lambda t: ProbeResult(t.name, clock[0], False, None, "timed out"),
                      workers=1)
    before = dict(watcher.states)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        watcher.run_round(watcher.targets)
    assert watcher.states == before
    blocker.execute("ROLLBACK")
    for _ in range(3):
        watcher.run_round(watcher.targets)
        clock[0] += 60
    writer.close()
    conn = sqlite3.connect(db)
    kinds = [k for (k,) in conn.execute("SELECT kind FROM events WHERE time >= ?", (NOW,))]
    assert kinds == ["target_down", "target_down"]       # gw and the internet group, once
    assert conn.execute("SELECT source, counter, delta FROM health").fetchall() == [
        ("watch", "rounds_failed", 1)]


def test_old_samples_are_pruned_windows_kept(db: Path):
    config = config_from_dict({"watch": {"sample_days": 1, "target": TARGETS}}).watch
    writer = WatchWriter(db, NOW, group=None, host="testhost")
    later = NOW + 86400 - 3600          # a day after the seed's end, less the last hour of it
    watcher = Watcher(config, writer, Stopper(), clock=lambda: later)
    watcher._prune(later)
    writer.close()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*), MIN(time) FROM watch_samples").fetchone() == (
        60 * 3, NOW - 3600)                             # the seed's last hour: 60 rounds of 3
    assert len(q.outages(conn)) == 5


def test_after_a_long_stop_open_windows_end_at_their_last_probe(db: Path):
    """The watch stopped for a day: what happened meanwhile is not known, so the open windows
    end at their last probe and the next probes start afresh (gw down again: a new alarm)."""
    config = config_from_dict({"watch": {"target": TARGETS[:1]}}).watch   # gw only
    later = [NOW + 86400]
    writer = WatchWriter(db, NOW, group=None, host="testhost")
    watcher = Watcher(config, writer, Stopper(), clock=lambda: later[0],
                      local_now=lambda: dt.datetime.fromtimestamp(later[0]).astimezone(),
                      probe=lambda t: ProbeResult(t.name, later[0], False, None, "timed out"),
                      workers=1)
    for _ in range(3):
        watcher.run_round(watcher.targets)
        later[0] += 60
    writer.close()
    conn = sqlite3.connect(db)
    rows = {r.name: r for r in q.statuses(conn, later[0])}
    # web, dns and the group are no longer configured: their windows closed at the last probe
    assert {n: (r.state, r.since) for n, r in rows.items() if n != "gw"} == {
        "internet": ("unknown", None), "web": ("unknown", None), "dns": ("unknown", None)}
    windows = conn.execute("SELECT state, start, last, end FROM watch_windows w JOIN "
                           "watch_targets t ON t.id = w.target_id WHERE t.name = 'gw' "
                           "ORDER BY start").fetchall()
    assert windows[-2] == ("up", NOW - 6600, NOW - 60, NOW - 60)
    assert windows[-1] == ("down", NOW + 86400, NOW + 86400 + 120, None)
    kinds = [k for (k,) in conn.execute("SELECT kind FROM events WHERE time > ?", (NOW,))]
    assert kinds == ["target_down"]
