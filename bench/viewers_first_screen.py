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

With --ranges, instead: every range (minute ... all), each viewer started with it as its
[tui]/[dash] default_range, --repeat times each (median, min, max):
  tui_first_screen_s[RANGE]    from starting `netwarden tui` to the first full table
  dash_first_chart_s[RANGE]    a fresh browser's first chart (as dash_first_chart_s above)
  dash_warm_chart_s[RANGE]     the same after a reload (scripts cached: the data's share)
  floor_first_chart_s, floor_warm_chart_s   bench/dash_floor.py's, as above
  dash_chart_data_s[RANGE]     the first draw's callback computed in the bench's process
                               (totals, series, figure; a store only)
  dash_details_data_s[RANGE]   the next callback (top table, countries), the same way
  api_exe_s[RANGE]             GET /api/v1/flows?range=RANGE&group=exe, answered in full
  reads_rollups[RANGE]         whether the exe totals of that range read rollups
STORE may be a server's URL (a fleet: bench/viewers_fleet.py makes one); --config then names
a viewer config with its [remote] reader_password_file.

Under root the viewers run as `nobody` (as the tests do); the store's directory must let that
user in. Make the store with bench/viewers_gen.py.

    python3 bench/viewers_first_screen.py STORE.db [--port 5290] [--json out.json]
    python3 bench/viewers_first_screen.py STORE.db|URL --ranges [--config viewer.toml]
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


RANGES = ("minute", "hour", "day", "week", "month", "all")


def ranged_config(base: str, time_range: str) -> str:
    """The viewer config ``base`` with ``time_range`` shown first by both viewers."""
    return (f"{base}\n[tui]\ndefault_range = \"{time_range}\"\n"
            f"[dash]\ndefault_range = \"{time_range}\"\nrefresh_s = 0\n")


def tui_range_first_screen(db: str, config: Path) -> float:
    with tmux_pane("bench") as pane:
        began = time.monotonic()
        pane.start(viewer_args("tui", "--db", db, "--config", str(config)), width=120,
                   env={"TZ": "UTC"})
        pane.wait_for(" entr", timeout=300, unless=READING)     # 1 entry, N entries
        elapsed = time.monotonic() - began
        pane.keys("q")
        return elapsed


def api_seconds(url: str) -> float:
    import urllib.request
    began = time.monotonic()
    with urllib.request.urlopen(url, timeout=300) as answer:
        json.loads(answer.read())
    return time.monotonic() - began


def reads_rollups(db: str, time_range: str) -> bool | None:
    """Asked of the query layer in this process, for the record (the viewers run apart);
    None for a server (its driver is not imported as root: the same plan as a store's)."""
    if "://" in db:
        return None
    import sqlite3

    from netwarden.store.traffic_queries import reads_rollups as asks_rollups
    from netwarden.view.ranges import TimeRange, traffic_view, window
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        win = window(TimeRange.parse(time_range), 0, time.time())
        return asks_rollups(conn, "exe", traffic_view(win))
    finally:
        conn.close()


def dash_data_seconds(db: str, time_range: str, chart: bool) -> float | None:
    """What the page's server computes, in this process (without the browser's share, which
    bench/dash_floor.py measures); None for a server. ``chart``: the first draw's callback
    (totals, the chart's series and figure); else the one after it (the top table and the
    countries, which look up every remote address's country)."""
    if "://" in db:
        return None
    from netwarden.viewer_dash.app import Views
    from netwarden.viewer_dash.geo import open_country_lookup
    from netwarden.viewer_dash.source import DashSettings
    views = Views(DashSettings(Path(db)), open_country_lookup(""))
    began = time.monotonic()
    views.main("exe", time_range, 0, None, "total", None, None, chart=chart, details=not chart)
    return time.monotonic() - began


def measure_ranges(db: str, base: str, port: int, repeat: int) -> dict[str, object]:
    directory = Path(tempfile.mkdtemp(prefix="nwv-bench-"))
    directory.chmod(0o755)
    figures: dict[str, object] = {}
    try:
        for time_range in RANGES:
            config = directory / f"{time_range}.toml"
            config.write_text(ranged_config(base, time_range))
            config.chmod(0o644)
            figures[f"reads_rollups[{time_range}]"] = reads_rollups(db, time_range)
            for name, chart in (("dash_chart_data_s", True), ("dash_details_data_s", False)):
                data = [dash_data_seconds(db, time_range, chart) for _ in range(repeat + 1)]
                if None not in data:      # the first call imports Dash: not counted
                    figures.update(summary(f"{name}[{time_range}]", data[1:]))  # type: ignore
            tui = [tui_range_first_screen(db, config) for _ in range(repeat)]
            figures.update(summary(f"tui_first_screen_s[{time_range}]", tui))
            server = start_dash(db, port, directory, config.read_text())
            try:
                charts = [first_and_warm_chart(server.url + "/") for _ in range(repeat)]
                api = [api_seconds(f"{server.url}/api/v1/flows?range={time_range}&group=exe")
                       for _ in range(repeat)]
            finally:
                server.stop()
            figures.update(summary(f"dash_first_chart_s[{time_range}]", [c for c, _ in charts]))
            figures.update(summary(f"dash_warm_chart_s[{time_range}]", [w for _, w in charts]))
            figures.update(summary(f"api_exe_s[{time_range}]", api))
            print(json.dumps({k: v for k, v in figures.items() if time_range in k}),
                  file=sys.stderr)
        floor = start_floor(port + 1)
        try:
            cold_warm = [first_and_warm_chart(f"http://127.0.0.1:{port + 1}/")
                         for _ in range(repeat)]
        finally:
            floor.kill()
            floor.wait()
        figures.update(summary("floor_first_chart_s", [c for c, _ in cold_warm]))
        figures.update(summary("floor_warm_chart_s", [w for _, w in cold_warm]))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("db", type=str)
    parser.add_argument("--ranges", action="store_true", help="every range, both viewers")
    parser.add_argument("--config", type=Path, help="a viewer config to start from")
    parser.add_argument("--port", type=int, default=5290)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--repeat", type=int, default=5,
                        help="first screens and first charts measured (median, min, max)")
    args = parser.parse_args()
    figures: dict[str, object] = {"load_average_1min": round(os.getloadavg()[0], 2)}
    if args.ranges:
        base = args.config.read_text() if args.config else ""
        figures.update(measure_ranges(args.db, base, args.port, args.repeat))
    else:
        import sqlite3
        figures["flow_rows"] = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True).execute(
            "SELECT COUNT(*) FROM flows").fetchone()[0]
        figures.update({**measure_tui(Path(args.db), args.repeat),
                        **measure_dash(Path(args.db), args.port, args.repeat)})
    figures["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
