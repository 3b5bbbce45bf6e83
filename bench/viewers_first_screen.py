#!/usr/bin/env python3
"""Time to first screen (TUI) and first chart (Dash) on a large store, and each one's memory.

Measured in one run, printed as figures (no assertions; targets are <= 1 s each); times
measured --repeat times are given as median, min and max:
  tui_first_screen_s   from starting `netwarden tui` in a tmux pane to the first full table
  tui_all_range_s      from pressing `t` into 'all time' to that table (every row summed)
  tui_peak_rss_mib     the TUI process's peak resident memory (VmHWM)
  dash_server_start_s  from starting `netwarden dash` to its listening
  dash_first_chart_s   in Chromium, from navigation start to the chart holding its series
                       (performance.now() at that moment; a fresh browser profile, cold cache)
  dash_warm_chart_s    the same for a reload (scripts cached)
  dash_peak_rss_mib    the server process's peak resident memory after both loads
  floor_first_chart_s  the same two times for bench/dash_floor.py, a page with one dcc.Graph
  floor_warm_chart_s   and nothing else: what any Dash page costs on this machine, measured
                       in the same run, interleaved with netwarden's page

Under root the viewers run as `nobody` (as the tests do); the store's directory must let that
user in. Make the store with bench/viewers_gen.py.

    python3 bench/viewers_first_screen.py STORE.db [--port 5290] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.browser import chromium  # noqa: E402
from tests.support.viewer_proc import start_dash, tmux_pane, viewer_args  # noqa: E402

READING = "reading the store"
CHART_READY_JS = """
const done = arguments[arguments.length - 1];
function check() {
  const plot = document.querySelector('#traffic-chart .js-plotly-plot');
  if (plot && plot.data && plot.data.length > 0) { done(performance.now()); return; }
  requestAnimationFrame(check);
}
check();
"""


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def viewer_pid(pane_pid: int) -> int:
    out = subprocess.run(["pgrep", "-P", str(pane_pid)], capture_output=True, text=True).stdout
    return int(out.split()[0])


def tui_first_screen(db: Path) -> float:
    with tmux_pane("bench") as pane:
        began = time.monotonic()
        pane.start(viewer_args("tui", "--db", str(db)), env={"TZ": "UTC"})
        pane.wait_for(" entries ", timeout=120, unless=READING)
        elapsed = time.monotonic() - began
        pane.keys("q")
        return elapsed


def summary(name: str, values: list[float]) -> dict[str, float]:
    return {f"{name}_median": round(statistics.median(values), 3),
            f"{name}_min": round(min(values), 3), f"{name}_max": round(max(values), 3)}


def measure_tui(db: Path, repeat: int) -> dict[str, float]:
    firsts = [tui_first_screen(db) for _ in range(repeat)]
    with tmux_pane("bench") as pane:
        began = time.monotonic()
        pane.start(viewer_args("tui", "--db", str(db)), env={"TZ": "UTC"})
        pane.wait_for(" entries ", timeout=120, unless=READING)
        first = time.monotonic() - began
        pid = viewer_pid(int(pane.tmux("display", "-p", "-t", pane.session, "#{pane_pid}")))
        pane.keys("t", "t", "t")                      # hour -> day -> week -> month
        pane.wait_for("| month ", timeout=300, unless=READING)
        began = time.monotonic()
        pane.keys("t")                                # -> all
        pane.wait_for("all time", timeout=300, unless=READING)
        all_range = time.monotonic() - began
        rss = peak_rss_mib(pid)
        pane.keys("q")
    return {**summary("tui_first_screen_s", firsts + [first]),
            "tui_all_range_s": round(all_range, 3), "tui_peak_rss_mib": round(rss, 1)}


def first_and_warm_chart(url: str) -> tuple[float, float]:
    """In a fresh browser profile (nothing cached): the first chart, then after a reload."""
    with chromium() as driver:
        driver.set_script_timeout(120)
        driver.get("about:blank")
        driver.get(url)
        cold = driver.execute_async_script(CHART_READY_JS) / 1000
        driver.refresh()
        return cold, driver.execute_async_script(CHART_READY_JS) / 1000


def start_floor(port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "dash_floor.py"), str(port)],
                            stdout=subprocess.PIPE, text=True, cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "serving"
    return proc


def measure_dash(db: Path, port: int, repeat: int) -> dict[str, float]:
    directory = Path(tempfile.mkdtemp(prefix="nwv-bench-"))
    directory.chmod(0o755)
    began = time.monotonic()
    server = start_dash(db, port, directory, "[dash]\nrefresh_s = 0\n")
    started = time.monotonic() - began
    floor = start_floor(port + 1)
    times: dict[str, list[tuple[float, float]]] = {"dash": [], "floor": []}
    try:
        for i in range(repeat):
            pages = [("dash", server.url + "/"), ("floor", f"http://127.0.0.1:{port + 1}/")]
            for name, url in pages if i % 2 == 0 else pages[::-1]:
                times[name].append(first_and_warm_chart(url))
        rss = peak_rss_mib(server.proc.pid)
    finally:
        server.stop()
        floor.kill()
        floor.wait()
        shutil.rmtree(directory, ignore_errors=True)
    figures = {"dash_server_start_s": round(started, 3)}
    for name in ("dash", "floor"):
        figures.update(summary(f"{name}_first_chart_s", [c for c, _ in times[name]]))
        figures.update(summary(f"{name}_warm_chart_s", [w for _, w in times[name]]))
    figures["dash_peak_rss_mib"] = round(rss, 1)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--port", type=int, default=5290)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--repeat", type=int, default=5,
                        help="first screens and first charts measured (median, min, max)")
    args = parser.parse_args()
    import sqlite3
    rows = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True).execute(
        "SELECT COUNT(*) FROM flows").fetchone()[0]
    figures = {"flow_rows": rows, "load_average_1min": round(os.getloadavg()[0], 2),
               **measure_tui(args.db, args.repeat),
               **measure_dash(args.db, args.port, args.repeat)}
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
