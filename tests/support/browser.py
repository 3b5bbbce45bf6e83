"""Headless Debian Chromium through chromedriver (selenium), kept off the internet."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")


@contextmanager
def chromium(width: int = 1280, height: int = 1400) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    profile = tempfile.mkdtemp(prefix="nwv-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


CHART_NAMES_JS = """
const plot = document.querySelector(arguments[0] + ' .js-plotly-plot');
return plot && plot.data ? plot.data.map(t => t.name) : null;
"""


def prefer_scheme(driver, scheme: str) -> None:
    """Make the page see `prefers-color-scheme: scheme` ('light' or 'dark'), as a desktop set
    to that scheme would (Chromium's DevTools protocol; applies to the pages loaded next and
    to the one shown, live)."""
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
        "features": [{"name": "prefers-color-scheme", "value": scheme}]})


#: The traffic chart's y-axis title and its first tick label, as drawn (SVG text).
Y_AXIS_JS = """
const plot = document.querySelector(arguments[0] + ' .js-plotly-plot');
if (!plot) return null;
const title = plot.querySelector('.g-ytitle text');
const ticks = [...plot.querySelectorAll('.yaxislayer-above .ytick text')].map(t => t.textContent);
return title ? {title: title.textContent, ticks: ticks} : null;
"""

#: Colours the browser computed: the page's background and a chart's tick label fill.
COLOURS_JS = """
const tick = document.querySelector(arguments[0] + ' .xtick text');
return {page: getComputedStyle(document.body).backgroundColor,
        tick: tick ? getComputedStyle(tick).fill : null};
"""
