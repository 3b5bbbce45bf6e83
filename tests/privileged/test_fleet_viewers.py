"""A fleet on one PostgreSQL: two real sensors (two configs, two stores, two host roles), each
with its own sink; the TUI (a real tmux pane) and Dash (headless Chromium) read the server
with --db URL, show both hosts, and filter by host; Dash's fleet page lists them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.privileged.test_remote_sink_e2e import Chatter
from tests.support.browser import CHART_NAMES_JS, chromium
from tests.support.sensor_proc import REPO, SensorProcess, netwarden, netwarden_cmd
from tests.support.sql_servers import PostgresServer, add_roles, provision
from tests.support.users import temporary_user
from tests.support.viewer_proc import start_dash, tmux_pane, viewer_args, viewer_port, wait_until

HOSTS = {"fleet_alpha": "alpha-Secret-1", "fleet_beta": "beta-Secret-2"}
READER, READER_PASSWORD = "fleet_viewer", "viewer-Secret-3"
PORT = viewer_port(40)


@pytest.fixture(scope="module")
def fleet() -> Iterator[tuple[PostgresServer, Path]]:
    """Both hosts' rows on the server; yields it and a viewer config (readable by nobody)."""
    server = provision("postgresql")
    base = Path(tempfile.mkdtemp(prefix="nwtest-fleet-"))
    os.chmod(base, 0o755)
    try:
        for role, password in HOSTS.items():
            add_roles(server, role, password, READER, READER_PASSWORD)
        with temporary_user("nwfleet") as account:
            sensors, sinks = [], []
            for role, password in HOSTS.items():
                directory = base / role
                directory.mkdir()
                os.chown(directory, account.pw_uid, account.pw_gid)
                (directory / "password").write_text(password + "\n")
                os.chown(directory / "password", account.pw_uid, account.pw_gid)
                os.chmod(directory / "password", 0o600)
                sensor = SensorProcess.write_config(directory / "sensor", extra=(
                    f'[store]\ngroup = ""\nowner = "{account.pw_name}"\n'
                    f'[remote]\nurl = "{server.url(role)}"\n'
                    f'password_file = "{directory / "password"}"\n'
                    f'state_path = "{directory / "sink.db"}"\ninterval_s = 0.2\n'
                    'heartbeat_s = 1\n'))
                os.chmod(directory / "sensor", 0o755)
                os.chmod(sensor.config, 0o644)
                sensors.append(sensor)
            for sensor in sensors:
                sensor.start()
            for sensor in sensors:
                sinks.append(subprocess.Popen(
                    netwarden_cmd("sink", "--config", str(sensor.config), "--db",
                                  str(sensor.db), "--user", account.pw_name),
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    env=dict(os.environ, PYTHONPATH=str(REPO))))
            with Chatter():
                time.sleep(4)
            for sensor in sensors:
                sensor.stop()
            time.sleep(3)                     # the sinks ship the last windows
            for sink in sinks:
                sink.send_signal(signal.SIGTERM)
                sink.wait(timeout=30)
        (base / "reader").write_text(READER_PASSWORD + "\n")
        os.chmod(base / "reader", 0o644)
        config = base / "viewer.toml"
        config.write_text(f'[remote]\nreader_password_file = "{base / "reader"}"\n'
                          '[dash]\nrefresh_s = 0\n')
        os.chmod(config, 0o644)
        yield server, config
    finally:
        server.remove()
        shutil.rmtree(base, ignore_errors=True)


def test_the_server_has_both_hosts(fleet: tuple[PostgresServer, Path]) -> None:
    server, config = fleet
    hosts = netwarden("fleet", "hosts", "--db", server.url(READER), "--config", str(config),
                      "--user", "nobody").stdout
    assert all(role in hosts for role in HOSTS), hosts


def test_tui_shows_both_hosts_and_filters_by_host(fleet: tuple[PostgresServer, Path]) -> None:
    server, config = fleet
    with tmux_pane("fleet-tui") as pane:
        pane.start(viewer_args("tui", "--db", server.url(READER), "--config", str(config)),
                   width=120, env={"TZ": "UTC", "LANG": "C.UTF-8"})
        first = pane.wait_for("python", unless="reading the store")
        assert first.splitlines()[0].startswith("netwarden: executable")
        pane.keys("G")                                        # the grouping before the first
        hosts = pane.wait_for("fleet_beta", unless="reading the store")
        assert "HOST" in hosts.splitlines()[2] and "fleet_alpha" in hosts
        rows = [line for line in hosts.splitlines() if "fleet_" in line]
        chosen = "fleet_alpha" if "fleet_alpha" in rows[0] else "fleet_beta"
        pane.keys("Enter")
        filtered = pane.wait_for(f"+host={chosen}", unless="reading the store")
        assert "python" in filtered


def test_dash_shows_both_hosts_filters_by_host_and_lists_the_fleet(
        fleet: tuple[PostgresServer, Path]) -> None:
    from selenium.webdriver.common.by import By

    from tests.contract.test_dash_browser import choose, pick_option
    server, config = fleet
    dash = start_dash(server.url(READER), PORT, config.parent,
                      config.read_text())
    try:
        with chromium() as browser:
            browser.get(dash.url + "/")
            wait_until(lambda: browser.execute_script(CHART_NAMES_JS, "#traffic-chart"), 30,
                       "the chart")
            choose(browser, "group", "host")
            wait_until(lambda: set(browser.execute_script(CHART_NAMES_JS, "#traffic-chart")
                                   or []) == set(HOSTS), 30, "both hosts in the chart",
                       lambda: str(browser.execute_script(CHART_NAMES_JS, "#traffic-chart")))
            pick_option(browser, "include", "host=fleet_beta")
            wait_until(lambda: browser.execute_script(CHART_NAMES_JS, "#traffic-chart") ==
                       ["fleet_beta"], 30, "the chart filtered to one host")
            browser.find_element(By.ID, "fleet-link").click()
            table = wait_until(lambda: browser.find_elements(By.ID, "fleet-table"), 30,
                               "the fleet table")[0].text
            assert "fleet_alpha" in table and "fleet_beta" in table and "caught up" in table
    finally:
        dash.stop()
