"""`netwarden dash` served for real, driven in headless Chromium, and its JSON API."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import CHART_NAMES_JS, chromium
from tests.support.device_data import HUE, PHONE, PI, seed_devices, store_before_discovery
from tests.support.geoip import write_country_mmdb
from tests.support.viewer_data import seed_store
from tests.support.watch_data import seed_watch
from tests.support.viewer_proc import (
    DashServer, REPO, share, start_dash, viewer_args, viewer_dir, viewer_port, wait_until,
)

PORT, TOKEN_PORT, SPARE_PORT = viewer_port(10), viewer_port(11), viewer_port(12)
TOKEN = "t0ken-for-tests"
HOUR_EXES = ["/usr/lib/firefox/firefox", "/usr/sbin/nginx", "/usr/sbin/sshd", "/usr/bin/curl"]


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with viewer_dir("nwv-dash-") as directory:
        db = directory / "nw.db"
        now = int(time.time())
        seed_store(db, now)
        seed_devices(db, now)
        seed_watch(db, now)
        share(db)
        mmdb = write_country_mmdb(directory / "countries.mmdb")
        os.chmod(mmdb, 0o644)
        yield directory


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[DashServer]:
    dash = start_dash(workdir / "nw.db", PORT, workdir,
                      f'[dash]\ngeoip_mmdb = "{workdir / "countries.mmdb"}"\nrefresh_s = 0\n')
    yield dash
    dash.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as driver:
        yield driver


def chart_names(driver, selector: str = "#traffic-chart") -> list[str] | None:
    return driver.execute_script(CHART_NAMES_JS, selector)


def wait_chart(driver, expected: list[str], selector: str = "#traffic-chart") -> None:
    wait_until(lambda: chart_names(driver, selector) == expected, 20,
               f"chart series {expected}", lambda: str(chart_names(driver, selector)))


def pick_option(driver, dropdown_id: str, value: str) -> None:
    """Open a Dash multi-select, tick the option with `value`, close it again."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    driver.find_element(By.ID, dropdown_id).click()
    option = wait_until(lambda: driver.find_elements(
        By.CSS_SELECTOR, f"input.dash-options-list-option-checkbox[value='{value}']"), 10,
        f"option {value}")
    driver.execute_script("arguments[0].closest('label').click()", option[0])
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)


def screenshot(driver, name: str) -> None:
    target = os.environ.get("NETWARDEN_SCREENSHOTS")
    if target:
        driver.save_screenshot(str(Path(target) / name))


def test_chart_filter_table_countries_and_executable_page(server: DashServer, browser):
    from selenium.webdriver.common.by import By
    browser.get(server.url + "/")
    wait_chart(browser, HOUR_EXES)
    table = wait_until(lambda: [c.text for c in browser.find_elements(
        By.CSS_SELECTOR, "#top-table td.nw-value")], 10, "the table")
    assert table == HOUR_EXES
    countries = wait_until(lambda: browser.execute_script(
        "const p = document.querySelector('#countries-chart .js-plotly-plot');"
        "return p && p.data ? p.data[0].y : null"), 10, "the countries chart")
    assert set(countries) == {"US United States", "(local/private)"}
    time.sleep(0.5)
    screenshot(browser, "dash.png")

    pick_option(browser, "exclude", "exe=/usr/sbin/nginx")
    wait_chart(browser, [n for n in HOUR_EXES if n != "/usr/sbin/nginx"])

    pick_option(browser, "include", "exe=/usr/bin/curl")
    wait_chart(browser, ["/usr/bin/curl"])

    browser.find_element(By.CSS_SELECTOR, "#top-table a[href*='curl']").click()
    title = wait_until(lambda: browser.find_elements(By.ID, "exe-title"), 20, "the exe page")
    assert title[0].text == "/usr/bin/curl"
    versions = browser.find_elements(By.CSS_SELECTOR, "#exe-versions tbody tr")
    assert [row.text.split()[0][:4] for row in versions] == ["0000", "cccc"]
    assert "/usr/bin/bash" in browser.find_element(By.ID, "exe-parent").text
    assert "1000" in browser.find_element(By.ID, "exe-user").text
    assert "example.org" in browser.find_element(By.ID, "exe-domain").text
    events = browser.find_element(By.ID, "exe-events").text
    assert "exe_modified" in events and "old_sha256=" + "0" * 64 in events
    wait_chart(browser, ["0000000000000000", "cccccccccccccccc"], "#exe-versions-chart")
    assert "US United States" in browser.execute_script(
        "return document.querySelector('#exe-countries-chart .js-plotly-plot').data[0].y")
    screenshot(browser, "dash-executable.png")


def get(url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_api_answers_filtered_like_the_page(server: DashServer):
    status, body = get(server.url + "/api/v1/flows?group=exe&exclude=exe:/usr/sbin/nginx")
    assert status == 200
    assert [r["value"] for r in body["rows"]] == [n for n in HOUR_EXES if n != "/usr/sbin/nginx"]
    status, body = get(server.url + "/api/v1/flows?include=exe:/usr/bin/curl&include=rport:53")
    assert [(r["exe"], r["raddr"], r["sent"], r["recv"]) for r in body["rows"]] == [
        ("/usr/bin/curl", "8.8.8.8", 60, 120)]
    status, body = get(server.url + "/api/v1/executables?range=week")
    assert {r["path"] for r in body["rows"]} == set(HOUR_EXES) | {"/usr/bin/apt"}
    status, body = get(server.url + "/api/v1/events?kind=exe_modified")
    assert [(e["kind"], e["fields"]["path"]) for e in body["rows"]] == [
        ("exe_modified", "/usr/bin/curl")]
    status, body = get(server.url + "/api/v1/flows?range=year")
    assert status == 400 and body["error"].startswith("range: unknown time range")


def test_a_configured_token_is_required(workdir: Path):
    with start_dash(workdir / "nw.db", TOKEN_PORT, workdir,
                    f'[dash]\ntoken = "{TOKEN}"\nrefresh_s = 0\n') as dash:
        status, body = get(dash.url + "/api/v1/flows")
        assert status == 401 and "bearer token is required" in body["error"]
        assert get(dash.url + "/api/v1/flows", "wrong")[0] == 401
        status, body = get(dash.url + "/api/v1/flows?group=host", TOKEN)
        assert status == 200 and body["rows"][0]["value"] == "testhost"
        status, body = get(dash.url + "/api/v1/devices")
        assert status == 401 and "bearer token is required" in body["error"]
        assert get(dash.url + "/api/v1/devices", "wrong")[0] == 401
        status, body = get(dash.url + "/api/v1/devices", TOKEN)
        assert status == 200 and [r["mac"] for r in body["rows"]] == [PHONE, PI, HUE]
        assert get(dash.url + "/")[0] == 401
        with chromium() as driver:
            driver.get(dash.url + f"/?token={TOKEN}")   # sets the cookie, drops the token
            wait_chart(driver, HOUR_EXES)
            assert "token" not in driver.current_url


def run_dash(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(viewer_args("dash", *args), capture_output=True, text=True,
                          timeout=60, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))


def test_beyond_loopback_without_a_token_is_refused(workdir: Path):
    done = run_dash("--db", str(workdir / "nw.db"), "--host", "0.0.0.0", "--port",
                    str(SPARE_PORT))
    assert done.returncode == 78
    assert "set a bearer token" in done.stderr


def test_a_port_in_use_is_a_clear_error(server: DashServer, workdir: Path):
    done = run_dash("--db", str(workdir / "nw.db"), "--port", str(PORT))
    assert done.returncode == 69
    assert f"cannot listen on 127.0.0.1:{PORT}" in done.stderr


def test_bad_port_is_a_usage_error():
    done = run_dash("--port", "70000")
    assert done.returncode == 2 and "--port must be from 1 to 65535" in done.stderr


def test_a_missing_store_is_a_message_not_a_crash(workdir: Path, browser):
    from selenium.webdriver.common.by import By
    with start_dash(workdir / "absent.db", SPARE_PORT + 1, workdir,
                    "[dash]\nrefresh_s = 0\n") as dash:
        status, body = get(dash.url + "/api/v1/flows")
        assert status == 503 and body["error"].startswith("no database at")
        browser.get(dash.url + "/")
        status_line = wait_until(lambda: "".join(
            e.text for e in browser.find_elements(By.ID, "store-status")), 20, "the store status")
        assert "no database at" in status_line
        assert dash.proc.poll() is None


def device_cells(driver, column: str) -> list[str]:
    from selenium.webdriver.common.by import By
    return [c.text for c in driver.find_elements(
        By.CSS_SELECTOR, f"#devices-table td[data-dash-column='{column}']")]


def choose(driver, dropdown_id: str, label: str) -> None:
    """Open a Dash single-choice dropdown and pick the option shown as `label`."""
    from selenium.webdriver.common.by import By
    driver.find_element(By.ID, dropdown_id).click()
    options = wait_until(lambda: [o for o in driver.find_elements(
        By.CSS_SELECTOR, ".dash-dropdown-option") if o.text == label], 10, f"option {label}")
    options[0].click()


PRESENCE_BARS_JS = """
const plot = document.querySelector('#presence-chart .js-plotly-plot');
return plot && plot.data ? plot.data.map(t => [t.name, t.base.length]) : null;
"""


def test_devices_page_table_and_presence_timeline(server: DashServer, browser):
    from selenium.webdriver.common.by import By
    browser.get(server.url + "/")
    wait_chart(browser, HOUR_EXES)
    browser.find_element(By.ID, "devices-link").click()
    macs = wait_until(lambda: device_cells(browser, "mac"), 20, "the devices table")
    assert macs == [PHONE, PI, HUE]          # most recently seen first
    assert device_cells(browser, "name") == ["", "kitchen pi", "Hue Bridge"]
    assert device_cells(browser, "vendor") == ["", "Raspberry Pi Foundation",
                                               "Philips Lighting BV"]
    assert device_cells(browser, "names") == ["", "raspi.local (mdns)", "Hue Bridge (ssdp)"]
    assert device_cells(browser, "open_ports") == ["-", "22,80", "80,443"]
    assert device_cells(browser, "device_type") == ["phone or laptop",
                                                    "single-board computer", "smart home hub"]
    assert device_cells(browser, "here") == ["yes", "yes", "no"]
    assert device_cells(browser, "known") == ["no", "yes", "no"]
    assert device_cells(browser, "trusted") == ["no", "yes", "no"]
    assert device_cells(browser, "random") == ["yes", "no", "no"]
    assert not browser.find_element(By.ID, "main-page").is_displayed()

    # The last day: the Pi twice (20 h to 14 h ago, the last two hours), the Hue once.
    wait_until(lambda: browser.execute_script(PRESENCE_BARS_JS) == [
        ["Hue Bridge", 1], ["kitchen pi", 2], [PHONE, 1]], 20, "the presence timeline",
        lambda: str(browser.execute_script(PRESENCE_BARS_JS)))
    time.sleep(0.5)
    screenshot(browser, "devices-dash.png")
    choose(browser, "presence-range", "last hour")
    wait_until(lambda: browser.execute_script(PRESENCE_BARS_JS) == [
        ["kitchen pi", 1], [PHONE, 1]], 20, "the last hour's timeline",
        lambda: str(browser.execute_script(PRESENCE_BARS_JS)))
    assert device_cells(browser, "mac") == [PHONE, PI, HUE]   # the table lists every device


def test_api_devices(server: DashServer):
    status, body = get(server.url + "/api/v1/devices")
    assert status == 200
    rows = {r["mac"]: r for r in body["rows"]}
    assert [r["mac"] for r in body["rows"]] == [PHONE, PI, HUE]
    pi = rows[PI]
    assert (pi["known_name"], pi["trusted"], pi["present"], pi["open_ports"]) == (
        "kitchen pi", True, True, [22, 80])
    assert pi["vendor"] == "Raspberry Pi Foundation" and pi["ips"] == ["10.78.0.11"]
    assert [w["end"] is None for w in pi["presence"]] == [False, True]
    assert rows[PHONE]["randomized"] and rows[PHONE]["open_ports"] is None
    assert not rows[HUE]["present"] and len(rows[HUE]["presence"]) == 1
    status, body = get(server.url + "/api/v1/devices?range=hour")
    assert {r["mac"]: len(r["presence"]) for r in body["rows"]} == {PHONE: 1, PI: 1, HUE: 0}
    status, body = get(server.url + "/api/v1/devices?mac=B8-27-EB-12-34-56&range=all")
    assert [(r["mac"], len(r["presence"])) for r in body["rows"]] == [(PI, 2)]
    status, body = get(server.url + "/api/v1/devices?mac=kitchen")
    assert status == 400 and body["error"].startswith("mac: wants a MAC address")


def test_devices_on_a_store_from_before_discovery(workdir: Path, browser):
    from selenium.webdriver.common.by import By
    old = workdir / "old.db"
    store_before_discovery(old, int(time.time()))
    share(old)
    with start_dash(old, viewer_port(14), workdir, "[dash]\nrefresh_s = 0\n") as dash:
        status, body = get(dash.url + "/api/v1/devices")
        assert status == 503 and "no LAN discovery tables" in body["error"]
        browser.get(dash.url + "/devices")
        said = wait_until(lambda: "".join(
            e.text for e in browser.find_elements(By.ID, "devices-status")), 20,
            "the devices page's status")
        assert "no LAN discovery tables" in said
        assert browser.find_elements(By.ID, "devices-table") == []
        assert dash.proc.poll() is None


def test_devices_page_on_a_store_without_devices(workdir: Path, browser):
    from selenium.webdriver.common.by import By
    bare = workdir / "bare.db"
    seed_store(bare, int(time.time()))
    share(bare)
    with start_dash(bare, viewer_port(15), workdir, "[dash]\nrefresh_s = 0\n") as dash:
        status, body = get(dash.url + "/api/v1/devices")
        assert status == 200 and body["rows"] == []
        browser.get(dash.url + "/devices")
        none = wait_until(lambda: browser.find_elements(By.ID, "devices-none"), 20,
                          "the no-devices note")
        assert "No LAN devices recorded yet" in none[0].text


def table_rows(driver, table_id: str) -> list[list[str]]:
    from selenium.webdriver.common.by import By
    return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")]


def test_connectivity_page(server: DashServer, browser):
    """State and uptime per target and group, a latency line per target with its failed
    probes marked, and the week's outages (tests/support/watch_data.py's three hours)."""
    from selenium.webdriver.common.by import By
    browser.get(server.url + "/")
    wait_chart(browser, HOUR_EXES)
    browser.find_element(By.ID, "watch-link").click()
    rows = wait_until(lambda: table_rows(browser, "watch-table"), 20, "the targets table")
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("internet (group)", "", "up"), ("gw", "", "up"), ("dns", "internet", "up"),
        ("web", "internet", "up")]
    by_name = {r[0]: r for r in rows}
    # up but for 10 minutes of the three watched hours (1 - 600/10800 = 94.44%, a little more
    # as the page is drawn after the seed's last probe)
    assert by_name["gw"][4].startswith("94.4") and by_name["gw"][5] == by_name["gw"][4]
    assert by_name["web"][6] == "20.0 ms" and by_name["gw"][6] == "1.0 ms"
    assert by_name["internet (group)"][4].startswith("97.2")
    wait_until(lambda: chart_names(browser, "#latency-chart") == [
        "dns", "dns: failed", "gw", "gw: failed", "web", "web: failed"], 20,
        "the latency chart", lambda: str(chart_names(browser, "#latency-chart")))
    outages = table_rows(browser, "outages-table")
    assert [(o[0], o[3]) for o in outages] == [
        ("dns", "5 min 0 s"), ("internet (group)", "5 min 0 s"), ("web", "5 min 0 s"),
        ("gw", "10 min 0 s"), ("web", "5 min 0 s")]
    assert {o[4] for o in outages} == {"timed out", "web: timed out; dns: timed out"}
    time.sleep(0.5)
    screenshot(browser, "watch-dash.png")


def test_api_watch(server: DashServer):
    status, body = get(server.url + "/api/v1/watch")
    assert status == 200
    assert [(t["name"], t["state"]) for t in body["targets"]] == [
        ("internet", "up"), ("gw", "up"), ("dns", "up"), ("web", "up")]
    assert [(o["name"], o["end"] - o["start"]) for o in body["outages"]] == [
        ("dns", 300), ("internet", 300), ("web", 300), ("gw", 600), ("web", 300)]
    status, body = get(server.url + "/api/v1/watch?range=minute")
    assert status == 200 and body["outages"] == []
    assert get(server.url + "/api/v1/watch?range=fortnight")[0] == 400
def test_the_baseline_badge_and_the_drift_list(workdir: Path, browser):
    from selenium.webdriver.common.by import By

    from netwarden.model import Executable, FlowRow, ProgramIdentity
    from netwarden.store.baseline import BaselineStore
    from netwarden.store.sqlite_writer import SqliteWriter
    db, now = workdir / "drift.db", int(time.time())
    seed_store(db, now)
    cli = BaselineStore(db, now, group=None)
    cli.learn(now - 60, 1)
    cli.finish(now - 30)
    cli.close()
    writer = SqliteWriter(db, now, group=None)
    stray = ProgramIdentity(Executable("/opt/stray/beacon", "d" * 64), "beacon", "beacon", 0)
    writer.write([FlowRow(now, stray, 2, "tcp", 6, "10.0.0.2", 40000, "203.0.113.9", 443,
                          10, 10)], [], [], now)
    writer.close()
    share(db)
    with start_dash(db, viewer_port(16), workdir, "[dash]\nrefresh_s = 0\n") as dash:
        browser.get(dash.url + "/")
        badge = wait_until(lambda: "".join(
            e.text for e in browser.find_elements(By.ID, "baseline-badge")), 20,
            "the baseline badge")
        assert badge == "baseline enforcing, 1 drift"
        table = wait_until(lambda: browser.find_elements(By.ID, "drift-table"), 20,
                           "the drift list")
        assert "new_program" in table[0].text and "/opt/stray/beacon" in table[0].text
