"""A real Prometheus scrapes `netwarden metrics` and the web viewer's /metrics, both behind
their bearer tokens, for a seeded store; after a known transfer its query API returns the
executables' bytes, "other" and the devices present (issue 23, point 2's acceptance)."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netwarden.store.sqlite_writer import SqliteWriter
from tests.support.device_data import seed_devices
from tests.support.processes import stop_process
from tests.support.prometheus import Prometheus, ScrapeJob, start_prometheus
from tests.support.viewer_data import (
    CURL,
    CURL_P,
    FIREFOX,
    FIREFOX_P,
    SSHD_P,
    flow,
    seed_store,
)
from tests.support.viewer_proc import (
    REPO,
    DashServer,
    share,
    start_dash,
    viewer_args,
    viewer_dir,
    viewer_port,
    wait_until,
)

EXPORTER_PORT, DASH_PORT = viewer_port(60), viewer_port(61)
EXPORTER_TOKEN, DASH_TOKEN = "exporter-s3cret", "dash-s3cret"


@dataclass
class Exporter:
    proc: subprocess.Popen[str]
    log: Path

    def stop(self) -> None:
        stop_process(self.proc)


def status(url: str, token: str = "") -> int:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def start_exporter(db: Path, directory: Path) -> Exporter:
    config = directory / "metrics.toml"
    config.write_text(f'[metrics]\ntoken = "{EXPORTER_TOKEN}"\ntop_n = 2\n')
    os.chmod(config, 0o644)
    log = directory / "metrics.log"
    proc = subprocess.Popen(
        viewer_args("metrics", "--db", str(db), "--config", str(config),
                    "--listen", f"127.0.0.1:{EXPORTER_PORT}"),
        stdout=open(log, "w"), stderr=subprocess.STDOUT, text=True, cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    exporter = Exporter(proc, log)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"netwarden metrics exited {proc.returncode}: "
                                 f"{log.read_text()}")
        return status(f"http://127.0.0.1:{EXPORTER_PORT}/metrics", EXPORTER_TOKEN) == 200
    try:
        wait_until(ready, 60, "netwarden metrics to serve", log.read_text)
    except BaseException:
        exporter.stop()
        raise
    return exporter


@dataclass
class Setup:
    db: Path
    prometheus: Prometheus
    exporter: Exporter
    dash: DashServer


@pytest.fixture
def scraped() -> Iterator[Setup]:
    with viewer_dir("nw-prom-") as directory:
        db = directory / "netwarden.db"
        now = int(time.time())
        seed_store(db, now)
        seed_devices(db, now)
        share(db)
        exporter = start_exporter(db, directory)
        dash = start_dash(db, DASH_PORT, directory,
                          f'[dash]\nrefresh_s = 0\ntoken = "{DASH_TOKEN}"\n'
                          "[metrics]\ntop_n = 2\n")
        prometheus = None
        try:
            prometheus = start_prometheus(directory / "prometheus", [
                ScrapeJob("exporter", f"127.0.0.1:{EXPORTER_PORT}", EXPORTER_TOKEN),
                ScrapeJob("dash", f"127.0.0.1:{DASH_PORT}", DASH_TOKEN)])
            yield Setup(db, prometheus, exporter, dash)
        finally:
            if prometheus is not None:
                prometheus.stop()
            dash.stop()
            exporter.stop()


def known_transfer(db: Path) -> None:
    """curl sends 1234 and receives 5678 bytes; firefox more; sshd least (top 2: "other")."""
    now = int(time.time())
    writer = SqliteWriter(db, now, group=None, host="testhost")
    writer.write([flow(now, CURL_P, "93.184.216.34", 443, 1234, 5678, domain="example.org"),
                  flow(now, FIREFOX_P, "142.250.1.1", 443, 100_000, 2_000_000),
                  flow(now, SSHD_P, "10.0.0.5", 51000, 10, 20, lport=22)], [], [], now)
    writer.close()
    share(db)    # the viewers' user reads it (as the sensor's group would)


def test_prometheus_scrapes_both_and_queries_a_known_transfer(scraped: Setup):
    prom = scraped.prometheus
    # Both targets up, through their tokens (and refused without them).
    wait_until(lambda: prom.values("up") == {"exporter": 1.0, "dash": 1.0}, 60,
               "both targets up", lambda: f"{prom.query('up')}\n{prom.log.read_text()}")
    assert status(f"http://127.0.0.1:{EXPORTER_PORT}/metrics") == 401
    assert status(f"http://127.0.0.1:{DASH_PORT}/metrics") == 401
    # The seeded store: devices present from discovery's presence windows.
    assert prom.values("netwarden_devices_present") == {"exporter": 2.0, "dash": 2.0}

    known_transfer(scraped.db)
    curl_sent = f'netwarden_executable_sent_bytes_total{{exe="{CURL.path}"}}'
    wait_until(lambda: prom.values(curl_sent) == {"exporter": 1234.0, "dash": 1234.0}, 60,
               "curl's bytes in Prometheus", lambda: str(prom.query(curl_sent)))
    assert prom.values(f'netwarden_executable_received_bytes_total{{exe="{CURL.path}"}}') \
        == {"exporter": 5678.0, "dash": 5678.0}
    assert prom.values(f'netwarden_executable_received_bytes_total{{exe="{FIREFOX.path}"}}') \
        == {"exporter": 2_000_000.0, "dash": 2_000_000.0}
    # top_n = 2: sshd is "other".
    assert prom.values('netwarden_executable_sent_bytes_total{exe="other"}') \
        == {"exporter": 10.0, "dash": 10.0}
    assert prom.query('netwarden_executable_sent_bytes_total{exe="/usr/sbin/sshd"}') == []
    assert prom.values("netwarden_store_up") == {"exporter": 1.0, "dash": 1.0}
    # HELP and TYPE reached Prometheus: a counter, so rate() and increase() apply.
    (meta,) = prom.metadata("netwarden_executable_sent_bytes_total")
    assert meta["type"] == "counter"
    assert meta["help"].startswith("Bytes sent per executable (path) since the exporter")
    print("\nPrometheus:", curl_sent, "->", prom.query(curl_sent))
