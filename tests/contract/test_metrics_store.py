"""/metrics against a real store written by the real writers: what is counted, that no counter
ever goes back (top-N changes, retention, a replaced store, an unreadable one), the queries'
plans, the exporter's HTTP answers and token, and the web viewer's /metrics."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from netwarden.metrics.counting import StoreCounter
from netwarden.metrics.exporter import ExporterSettings, make_server
from netwarden.metrics.scrape import scrape
from netwarden.model import Event, EventKind, HealthSample
from netwarden.store import metric_queries
from netwarden.store.sqlite_writer import SqliteWriter
from tests.support.device_data import seed_devices, store_before_discovery
from tests.support.viewer_data import (
    APT_P, CURL, CURL_P, FIREFOX, FIREFOX_P, NGINX_P, SSHD, SSHD_P, flow, seed_store,
)

REPO = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample by (name, labels), through the Prometheus client library's parser."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def sent(found: Samples, exe: str) -> float | None:
    return found.get(("netwarden_executable_sent_bytes_total", (("exe", exe),)))


def recv(found: Samples, exe: str) -> float | None:
    return found.get(("netwarden_executable_received_bytes_total", (("exe", exe),)))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    db = tmp_path / "netwarden.db"
    now = int(time.time())
    seed_store(db, now)
    seed_devices(db, now)
    yield db


def write(db: Path, rows=(), events=(), health=()) -> None:
    now = int(time.time())
    writer = SqliteWriter(db, now, group=None, host="testhost")
    writer.write(list(rows), list(events), list(health), now)
    writer.close()


def test_counts_start_with_the_exporter_and_add_a_known_transfer(store: Path):
    counter = StoreCounter(top_n=5)
    first = samples(scrape(counter, store))
    # What the store held before is not counted: a counter starts at 0 with the exporter.
    assert sent(first, CURL.path) is None
    assert sent(first, "other") == 0
    assert first[("netwarden_events_total", (("kind", "new_executable"),))] == 0
    assert first[("netwarden_store_up", ())] == 1
    assert first[("netwarden_devices_present", ())] == 2
    assert first[("netwarden_devices_recorded", ())] == 3
    now = int(time.time())
    write(store, [flow(now, CURL_P, "93.184.216.34", 443, 1234, 5678),
                  flow(now, CURL_P, "8.8.8.8", 53, 66, 130, protocol="udp")],
          [Event.of(now, EventKind.NEW_EXECUTABLE, path=CURL.path)])
    found = samples(scrape(counter, store))
    assert sent(found, CURL.path) == 1300 and recv(found, CURL.path) == 5808
    assert found[("netwarden_events_total", (("kind", "new_executable"),))] == 1
    # Read again with nothing new: the same values.
    assert samples(scrape(counter, store)) == found


def test_top_n_plus_other_and_no_series_ever_decreases(store: Path):
    counter = StoreCounter(top_n=2)
    scrape(counter, store)
    now = int(time.time())
    history: list[Samples] = []
    # Three executables; sshd climbs from last to first over the rounds, so the top 2
    # changes twice.
    rounds = [[flow(now, CURL_P, "1.1.1.1", 443, 500, 500),
               flow(now, FIREFOX_P, "1.1.1.1", 443, 300, 300),
               flow(now, SSHD_P, "10.0.0.5", 51000, 10, 10, lport=22)],
              [flow(now, SSHD_P, "10.0.0.5", 51000, 400, 400, lport=22)],
              [flow(now, SSHD_P, "10.0.0.5", 51000, 5000, 0, lport=22),
               flow(now, FIREFOX_P, "1.1.1.1", 443, 7, 7)]]
    for rows in rounds:
        write(store, rows)
        history.append(samples(scrape(counter, store)))
    first, second, third = history
    assert sent(first, CURL.path) == 500 and sent(first, FIREFOX.path) == 300
    assert sent(first, "other") == 10          # sshd, outside the top 2
    # sshd (820 bytes) passes firefox (600): firefox's series pauses, sshd's starts.
    assert sent(second, SSHD.path) == 400 and sent(second, FIREFOX.path) is None
    assert sent(second, "other") == 10
    # sshd leads; firefox's new bytes are "other"'s now.
    assert sent(third, SSHD.path) == 5400 and sent(third, "other") == 17
    for before, after in zip(history, history[1:]):
        for key, value in before.items():
            if key[0].endswith("_total") and key in after:
                assert after[key] >= value, key
    # Every byte is counted once: the series' sums are the bytes written.
    assert sum(v for (name, labels), v in third.items()
               if name == "netwarden_executable_sent_bytes_total") + 300 == \
        500 + 300 + 10 + 400 + 5000 + 7   # + firefox's paused 300


def test_retention_and_a_replaced_store_never_make_a_counter_fall(store: Path, tmp_path: Path):
    counter = StoreCounter(top_n=5)
    scrape(counter, store)
    write(store, [flow(int(time.time()), APT_P, "151.101.0.1", 80, 100, 100_000)])
    before = samples(scrape(counter, store))
    conn = sqlite3.connect(store)
    conn.execute("DELETE FROM flows")      # retention, at its most thorough
    conn.commit()
    conn.close()
    assert samples(scrape(counter, store)) == before
    # A new file at the same path: counting goes on from its end, nothing falls.
    store.unlink()
    seed_store(store, int(time.time()))
    after = samples(scrape(counter, store))
    assert after[("netwarden_executable_received_bytes_total", (("exe", "/usr/bin/apt"),))] \
        == 100_000


def test_an_unreadable_store_keeps_the_counters_and_says_so(store: Path):
    counter = StoreCounter(top_n=5)
    scrape(counter, store)
    write(store, [flow(int(time.time()), NGINX_P, "203.0.113.9", 51500, 70, 9, lport=80)])
    scrape(counter, store)
    moved = store.with_name("elsewhere.db")
    store.rename(moved)
    found = samples(scrape(counter, store))
    assert found[("netwarden_store_up", ())] == 0
    assert sent(found, "/usr/sbin/nginx") == 70
    moved.rename(store)
    assert samples(scrape(counter, store))[("netwarden_store_up", ())] == 1


def test_health_rows_sink_lag_and_silent_zero(store: Path):
    now = int(time.time())
    # Written before the exporter starts: the sink's lag is a level, so it counts.
    write(store, health=[HealthSample(now, "sink", "behind_s", 30),
                         HealthSample(now, "sink", "behind_rows", 500)])
    counter = StoreCounter(top_n=5)
    scrape(counter, store)
    write(store, events=[Event.of(now, EventKind.SENSOR_ERROR, component="silent-zero",
                                  state="silent", direction="receive")],
          health=[HealthSample(now, "sink", "behind_s", 12),
                  HealthSample(now, "sink", "behind_rows", -200),
                  HealthSample(now, "net", "flow_map_full", 4),
                  HealthSample(now, "dns", "dns_events_lost", 2),
                  HealthSample(now, "sensor", "hook_failed:dns", 1)])
    found = samples(scrape(counter, store))
    assert found[("netwarden_sink_behind_seconds", ())] == 42
    assert found[("netwarden_sink_behind_rows", ())] == 300
    assert found[("netwarden_sensor_flow_map_drops_total",
                  (("reason", "full"), ("source", "net")))] == 4
    assert found[("netwarden_sensor_ring_buffer_drops_total",
                  (("ring", "dns"), ("source", "dns")))] == 2
    assert found[("netwarden_sensor_hook_failures_total",
                  (("hook", "dns"), ("source", "sensor")))] == 1
    assert found[("netwarden_sensor_silent_zero_alarms_total", (("direction", "receive"),))] == 1
    assert found[("netwarden_sensor_silent_zero_alarms_total", (("direction", "send"),))] == 0
    assert found[("netwarden_sensor_errors_total", (("component", "silent-zero"),))] == 1


def test_a_port_scan_counts_once_however_often_it_is_reported(store: Path):
    now = int(time.time())
    counter = StoreCounter(top_n=5)
    first = samples(scrape(counter, store))
    assert first[("netwarden_port_scans_total", (("probe", "syn"),))] == 0

    def scan(report: int, probe: str, source: str) -> Event:
        return Event.of(now, EventKind.PORT_SCAN, source=source, ports=40 * report,
                        probe=probe, first=now - 100, report=report,
                        state="ongoing" if report < 3 else "ended")
    write(store, events=[scan(1, "syn", "192.0.2.9"), scan(2, "syn", "192.0.2.9"),
                         scan(3, "syn", "192.0.2.9"), scan(1, "udp", "192.0.2.10")])
    found = samples(scrape(counter, store))
    assert found[("netwarden_port_scans_total", (("probe", "syn"),))] == 1
    assert found[("netwarden_port_scans_total", (("probe", "udp"),))] == 1
    assert found[("netwarden_port_scans_total", (("probe", "fin"),))] == 0
    assert found[("netwarden_events_total", (("kind", "port_scan"),))] == 4


def test_a_store_from_before_discovery_has_no_device_metrics(tmp_path: Path):
    old = tmp_path / "old.db"
    store_before_discovery(old, int(time.time()))
    text = scrape(StoreCounter(top_n=5), old)
    assert "netwarden_store_up 1" in text
    assert "netwarden_devices_present" not in text


def test_every_read_of_a_growing_table_is_a_primary_key_range(store: Path):
    """A scrape reads only the new rows, however big the store (no scan, no index walk)."""
    conn = sqlite3.connect(store)
    for sql in metric_queries.RANGE_QUERIES:
        plan = " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, (1, 5)))
        assert "USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)" in plan, plan
        assert "SCAN" not in plan, plan
    conn.close()


# ---- the exporter over HTTP ----

def get(url: str, token: str = "") -> tuple[int, str, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_the_exporter_serves_metrics_behind_its_token(store: Path):
    import threading
    server = make_server(ExporterSettings(store, token="s3cret", top_n=5), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        status, _, body = get(f"{base}/metrics")
        assert status == 401 and "bearer token" in body
        assert get(f"{base}/metrics", "wrong")[0] == 401
        write(store, [flow(int(time.time()), CURL_P, "93.184.216.34", 443, 1234, 5678)])
        status, content_type, body = get(f"{base}/metrics", "s3cret")
        assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
        assert sent(samples(body), CURL.path) == 1234
        assert get(f"{base}/nothing", "s3cret")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netwarden", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=60)


@pytest.mark.parametrize("listen, status, says", [
    ("nonsense", 64, "--listen 'nonsense': wants HOST:PORT"),
    ("127.0.0.1:99999", 64, "port 99999 is not from 1 to 65535"),
    ("::1:9771", 64, "in brackets"),
    ("0.0.0.0:9771", 78, "set a bearer token ([metrics] token"),
])
def test_a_bad_listen_address_is_one_clear_line(listen: str, status: int, says: str,
                                                tmp_path: Path):
    done = run_cli("metrics", "--db", str(tmp_path / "none.db"), "--listen", listen)
    assert done.returncode == status
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_bad_metrics_setting_is_a_config_error(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text('[metrics]\nlisten = "nowhere"\n')
    done = run_cli("metrics", "--config", str(config))
    assert done.returncode == 78
    assert "[metrics] listen = 'nowhere'" in done.stderr


# ---- the web viewer's /metrics ----

def test_the_web_viewer_serves_metrics_behind_the_api_token(store: Path):
    from netwarden.viewer_dash.app import create_app
    from netwarden.viewer_dash.source import DashSettings
    app = create_app(DashSettings(db_path=store, token="s3cret", metrics_top_n=1))
    client = app.server.test_client()
    assert client.get("/metrics").status_code == 401
    # ?token= sets the page's cookie elsewhere; /metrics, like /api/, wants the header.
    assert client.get("/metrics?token=s3cret").status_code == 401
    write(store, [flow(int(time.time()), CURL_P, "93.184.216.34", 443, 1234, 5678),
                  flow(int(time.time()), SSHD_P, "10.0.0.5", 51000, 10, 20, lport=22)])
    answer = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/plain; version=0.0.4")
    found = samples(answer.get_data(as_text=True))
    assert sent(found, CURL.path) == 1234 and sent(found, "other") == 10


def test_a_viewer_reading_a_server_says_where_metrics_are(tmp_path: Path):
    from netwarden.config import RemoteConfig
    from netwarden.reading import ServerSource
    from netwarden.viewer_dash.app import create_app
    from netwarden.viewer_dash.source import DashSettings
    server = ServerSource("postgresql://reader@127.0.0.1:1/netwarden", RemoteConfig())
    app = create_app(DashSettings(db_path=tmp_path / "none.db", server=server))
    answer = app.server.test_client().get("/metrics")
    assert answer.status_code == 501
    assert "netwarden metrics" in answer.get_data(as_text=True)
