#!/usr/bin/env python3
"""Make the README's screenshots: both viewers on a seeded store (traffic, and LAN devices
with presence windows), as a person sees them.

The TUI runs in a real tmux pane (a week of traffic; then its devices view with the Raspberry
Pi selected); its screens are drawn as text in headless Chromium and photographed
(tui.png, devices-tui.png). The web viewer is photographed in the same Chromium: its main
page in the light and the dark scheme (dash.png, dash-dark.png), an executable's page
(dash-executable.png), the devices page (devices-dash.png), and a fresh install's first
minutes with no GeoIP file configured (dash-fresh.png). The connectivity watch's TUI view and
web page on three hours of a watch's history (watch-tui.png, watch-dash.png).

    python3 docs/screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import html
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.browser import CHART_NAMES_JS, chromium, prefer_scheme  # noqa: E402
from tests.support.device_data import PI, seed_devices  # noqa: E402
from tests.support.geoip import write_country_mmdb  # noqa: E402
from tests.support.viewer_data import seed_fresh_store, seed_store  # noqa: E402
from tests.support.watch_data import seed_watch  # noqa: E402
from tests.support.viewer_proc import (  # noqa: E402
    share, start_dash, tmux_pane, viewer_args, viewer_dir, viewer_port, wait_until,
)

PAGE = """<html><body style="margin:0;background:#1e1e1e;overflow:hidden">
<pre style="margin:8px;font:15px/1.25 'DejaVu Sans Mono',monospace;color:#ddd">{}</pre>
</body></html>"""


def terminal_html(screen: str) -> str:
    lines = []
    for number, line in enumerate(screen.splitlines()):
        text = html.escape(line.ljust(80))
        if number == 0 or line.startswith(">"):
            text = f'<span style="background:#ddd;color:#1e1e1e">{text}</span>'
        lines.append(text)
    return PAGE.format("\n".join(lines))


def shoot_chart(url: str, size: tuple[int, int], chart: str, out: Path,
                scheme: str = "light") -> None:
    """A screenshot of a Dash page once its chart (a CSS selector) has drawn its series, in
    the browser's light or dark scheme."""
    with chromium(*size) as driver:
        prefer_scheme(driver, scheme)
        driver.get(url)
        wait_until(lambda: driver.execute_script(CHART_NAMES_JS, chart), 30, chart)
        time.sleep(1.5)  # let plotly finish its transition and the details arrive
        driver.save_screenshot(str(out))


SHOTS = ("tui.png", "dash.png", "dash-dark.png", "dash-executable.png", "dash-fresh.png",
         "devices-tui.png", "devices-dash.png", "watch-tui.png", "watch-dash.png")


def shoot_fresh(out: Path) -> None:
    """A new install's page: four minutes of traffic, no GeoIP file configured."""
    with viewer_dir("nwv-fresh-") as directory:
        db = directory / "nw.db"
        seed_fresh_store(db, int(time.time()))
        share(db)
        server = start_dash(db, viewer_port(96), directory, "[dash]\nrefresh_s = 0\n")
        try:
            shoot_chart(server.url + "/", (1280, 1250), "#countries-chart",
                        out / "dash-fresh.png")
        finally:
            server.stop()


def shoot_watch(out: Path) -> None:
    """The connectivity watch: the TUI's view (w) and the web page (/watch)."""
    with viewer_dir("nwv-watch-") as directory:
        db = directory / "nw.db"
        now = int(time.time())
        seed_store(db, now)
        seed_watch(db, now)
        share(db)
        with tmux_pane("shotswatch") as pane:
            pane.start(viewer_args("tui", "--db", str(db)), env={"TZ": "UTC"})
            pane.wait_for("/usr/bin/curl", unless="reading the store")
            pane.keys("w")
            pane.wait_for("netwarden: connectivity |", unless="reading the store")
            screen = pane.screen()
            pane.keys("q")
        page = directory / "watch-tui.html"
        page.write_text(terminal_html(screen))
        with chromium(790, 620) as driver:
            driver.get(page.as_uri())
            driver.save_screenshot(str(out / "watch-tui.png"))
        server = start_dash(db, viewer_port(94), directory, "[dash]\nrefresh_s = 0\n")
        try:
            shoot_chart(server.url + "/watch", (1280, 900), "#latency-chart",
                        out / "watch-dash.png")
        finally:
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args()
    with viewer_dir("nwv-shots-") as directory:
        db = directory / "nw.db"
        now = int(time.time())
        seed_store(db, now)
        seed_devices(db, now)
        share(db)
        mmdb = write_country_mmdb(directory / "countries.mmdb")
        os.chmod(mmdb, 0o644)
        with tmux_pane("shots") as pane:
            pane.start(viewer_args("tui", "--db", str(db)), env={"TZ": "UTC"})
            pane.wait_for("/usr/bin/curl", unless="reading the store")
            pane.keys("t", "t")
            pane.wait_for("| week ", unless="reading the store")
            screen = pane.screen()
            pane.keys("d")
            pane.wait_for("here now", unless="reading the store")
            pane.keys("Down")
            pane.wait_for(f"-- kitchen pi ({PI})", unless="reading the store")
            devices_screen = pane.screen()
            pane.keys("q")
        page = directory / "tui.html"
        page.write_text(terminal_html(screen))
        devices_page = directory / "devices-tui.html"
        devices_page.write_text(terminal_html(devices_screen))
        server = start_dash(db, viewer_port(95), directory,
                            f'[dash]\ngeoip_mmdb = "{mmdb}"\nrefresh_s = 0\n')
        try:
            with chromium(790, 620) as driver:
                driver.get(page.as_uri())
                driver.save_screenshot(str(args.out / "tui.png"))
                driver.get(devices_page.as_uri())
                driver.save_screenshot(str(args.out / "devices-tui.png"))
            shoot_chart(server.url + "/", (1280, 1300), "#countries-chart",
                        args.out / "dash.png")
            shoot_chart(server.url + "/", (1280, 1300), "#countries-chart",
                        args.out / "dash-dark.png", scheme="dark")
            shoot_chart(server.url + "/exe?path=%2Fusr%2Flib%2Ffirefox%2Ffirefox", (1280, 1500),
                        "#exe-versions-chart", args.out / "dash-executable.png")
            shoot_chart(server.url + "/devices", (1280, 880), "#presence-chart",
                        args.out / "devices-dash.png")
        finally:
            server.stop()
    shoot_fresh(args.out)
    shoot_watch(args.out)
    print("wrote " + ", ".join(str(args.out / name) for name in SHOTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
