"""The web page's look, in headless Chromium (issue 24): a chart's axis unit agrees with the
table beside it in either unit system; light and dark follow the browser; a fresh install's
first minutes fill the chart; countries come from the embedded data, and the page says so."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import COLOURS_JS, Y_AXIS_JS, chromium, prefer_scheme
from tests.support.viewer_data import FRESH_PEERS, STEAM, seed_fresh_store
from tests.support.viewer_proc import (
    DashServer, share, start_dash, viewer_dir, viewer_port, wait_until,
)

IEC_PORT, SI_PORT = viewer_port(70), viewer_port(71)
UNIT = re.compile(r"\b(B|KiB|MiB|GiB|kB|MB|GB)\b")
IEC, SI = {"B", "KiB", "MiB", "GiB"}, {"B", "kB", "MB", "GB"}


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with viewer_dir("nwv-look-") as directory:
        seed_fresh_store(directory / "nw.db", int(time.time()))
        share(directory / "nw.db")
        yield directory


@pytest.fixture(scope="module")
def servers(workdir: Path) -> Iterator[dict[str, DashServer]]:
    """The same fresh store behind two viewers: no [dash] geoip_mmdb, units IEC and SI."""
    started = {"iec": start_dash(workdir / "nw.db", IEC_PORT, workdir, "[dash]\nrefresh_s = 0\n"),
               "si": start_dash(workdir / "nw.db", SI_PORT, workdir,
                                '[view]\nunits = "si"\n[dash]\nrefresh_s = 0\n')}
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as driver:
        yield driver


def axis(driver) -> dict:
    return wait_until(lambda: driver.execute_script(Y_AXIS_JS, "#traffic-chart"), 20,
                      "the traffic chart's y axis")


def table_units(driver) -> set[str]:
    from selenium.webdriver.common.by import By
    cells = wait_until(lambda: [c.text for c in driver.find_elements(
        By.CSS_SELECTOR, "#top-table td.nw-num") if UNIT.search(c.text)], 15, "the table")
    return {UNIT.search(text).group(1) for text in cells}


@pytest.mark.parametrize("system, allowed", [("iec", IEC), ("si", SI)])
def test_the_axis_unit_and_the_tables_agree(servers, browser, system: str, allowed: set):
    browser.get(servers[system].url + "/")
    drawn = axis(browser)
    unit = drawn["title"].split(" per ")[0]
    assert unit in allowed and unit != "B", drawn      # a fresh store's bins hold KiBs
    assert not any(UNIT.search(t) or t[-1:] in "kMG" for t in drawn["ticks"]), drawn
    units = table_units(browser)
    assert units and units <= allowed, (units, drawn)
    # The same bytes: the page's own hover text for a bar is the table's formatter.
    hover = browser.execute_script(
        "return document.querySelector('#traffic-chart .js-plotly-plot').data[0].customdata")
    assert {UNIT.search(h).group(1) for h in hover} <= allowed


def test_a_fresh_install_fills_the_chart_with_bars(servers, browser):
    browser.get(servers["iec"].url + "/")
    axis(browser)
    data = browser.execute_script(
        "const p = document.querySelector('#traffic-chart .js-plotly-plot');"
        "return {types: p.data.map(t => t.type), names: p.data.map(t => t.name),"
        " n: p.data[0].x.length, title: p.layout.title.text}")
    assert set(data["types"]) == {"bar"}
    assert "recorded since" in data["title"]            # zoomed to the store's minutes
    assert 25 <= data["n"] <= 40                        # 10-second bins over ~5 minutes
    steam = [n for n in data["names"] if n.endswith("/steamwebhelper")]
    assert steam and steam[0] != STEAM.path and "\u2026" in steam[0]
    from selenium.webdriver.common.by import By
    cell = wait_until(lambda: [c for c in browser.find_elements(
        By.CSS_SELECTOR, "#top-table td.nw-value a") if "steamwebhelper" in c.text], 15,
        "the long path in the table")[0]
    assert cell.get_attribute("title") == STEAM.path


def test_light_and_dark_follow_the_browser(servers, browser):
    def colours(scheme: str) -> dict:
        prefer_scheme(browser, scheme)
        browser.get(servers["iec"].url + "/")
        axis(browser)
        return browser.execute_script(COLOURS_JS, "#traffic-chart")

    def brightness(css: str) -> float:
        red, green, blue = (int(v) for v in re.findall(r"\d+", css)[:3])
        return (red + green + blue) / 3

    try:
        dark = colours("dark")
        light = colours("light")
    finally:
        prefer_scheme(browser, "light")
    assert brightness(dark["page"]) < 60 and brightness(dark["tick"]) > 180, dark
    assert brightness(light["page"]) > 200 and brightness(light["tick"]) < 80, light


def test_countries_out_of_the_box_and_the_page_says_from_where(servers, browser):
    from selenium.webdriver.common.by import By
    browser.get(servers["iec"].url + "/")
    note = wait_until(lambda: browser.find_elements(By.ID, "geoip-note"), 20, "the note")
    text = note[0].text
    assert "embedded iptocc" in text and re.search(r"Built \d{4}-\d\d-\d\d, .* old\.", text)
    countries = wait_until(lambda: browser.execute_script(
        "const p = document.querySelector('#countries-chart .js-plotly-plot');"
        "return p && p.data ? p.data[0].y : null"), 15, "the countries chart")
    assert set(countries) == {code for _, code in FRESH_PEERS}
