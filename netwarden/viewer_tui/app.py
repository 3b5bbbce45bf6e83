"""The curses program: read keys, ask the store, draw what `render` returns.

Everything decided here is decided elsewhere (state.py for keys, render.py for the screen,
netwarden.store.*_queries for data, netwarden.mutes for the mute list); this module only
connects them to a terminal. A store that is missing, empty, locked, unreadable or without
discovery tables is a message on the screen, never a crash: the viewer keeps running and `r`
(or live mode) tries again. So is a mutes file that cannot be read or written.
"""

from __future__ import annotations

import curses
import dataclasses
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import TypeVar

from netwarden.config import ConfigError
from netwarden.model.baseline import BaselineSummary
from netwarden.model.discovery import KnownDevice
from netwarden.mutes import (
    MuteFileError,
    add_mutes,
    default_mutes_path,
    load_mutes,
    remove_mutes,
)
from netwarden.reading import ServerSource
from netwarden.store.baseline import baseline_summary
from netwarden.store.device_queries import (
    devices,
    has_discovery_tables,
    presence_windows,
)
from netwarden.store.read_source import ReadSource, local_source, schema_version
from netwarden.store.remote_db import RemoteError
from netwarden.store.sqlite_db import StoreUnavailable, open_readonly
from netwarden.store.traffic_queries import TrafficTotal, traffic_totals
from netwarden.view.labels import (
    NO_DISCOVERY_TABLES,
    explain_unavailable,
    format_time,
    system_user_name,
)
from netwarden.view.ranges import TimeRange, Window, traffic_view, window
from netwarden.view.units import UnitSystem
from netwarden.viewer_tui.devices_view import DevicesData
from netwarden.viewer_tui.mutes_view import MuteListData, mute_entries
from netwarden.viewer_tui.watch_view import WatchData
from netwarden.viewer_tui.render import Screen, render, view_page_size
from netwarden.viewer_tui.state import (
    Action,
    BrowserState,
    View,
    handle_key,
    mute_target,
    visible_rows,
)

T = TypeVar("T")

_BACKSPACES = {"\x7f", "\x08", "KEY_BACKSPACE"}


@dataclass(frozen=True)
class TuiOptions:
    db_path: Path
    time_range: TimeRange = TimeRange.HOUR
    live_interval_s: float = 2.0
    busy_timeout_s: float = 1.0
    clock: Callable[[], float] = time.time
    tz: tzinfo | None = None       # None: the local time zone
    known_devices: tuple[KnownDevice, ...] = ()   # the config's [discovery] known
    mutes_path: Path | None = None  # None: the user's default (default_mutes_path())
    server: ServerSource | None = None   # --db URL: a fleet's server instead of the store
    units: UnitSystem = UnitSystem.IEC   # [view] units


class StoreProblem(Exception):
    """The store cannot answer this view; the message says why in words."""


NO_DISCOVERY = NO_DISCOVERY_TABLES + " d returns to the traffic."


class StoreReader:
    """Keeps one read-only connection; on any failure drops it and says why in words."""

    def __init__(self, path: Path, busy_timeout_s: float,
                 known: tuple[KnownDevice, ...] = (), server: ServerSource | None = None) -> None:
        self.path = path
        self._timeout = busy_timeout_s
        self._known = known
        self._server = server
        self._conn: ReadSource | None = None

    def totals(self, dimension: str, win: Window,
               state: BrowserState) -> tuple[list[TrafficTotal], str]:
        """(rows, problem): problem is '' when the store answered."""
        rows, problem = self._read(
            lambda conn: traffic_totals(conn, dimension, traffic_view(win, state.filters)))
        return rows or [], problem

    def baseline(self, now: float) -> BaselineSummary | None:
        """The baseline's badge data; None when the store cannot say (it is not shown)."""
        summary, _ = self._read(lambda conn: baseline_summary(conn, now))
        return summary

    def devices(self, win: Window, now: float) -> DevicesData:
        """Every device, and the presence windows overlapping `win` (its span for 'all':
        from the first window or device to now)."""
        def read(conn: ReadSource) -> DevicesData:
            if not has_discovery_tables(conn):
                raise StoreProblem(NO_DISCOVERY)
            rows = devices(conn, self._known)
            windows = presence_windows(conn, since=win.since or 0, until=win.until)
            starts = [w.start for w in windows] + [r.first_seen for r in rows]
            start = win.since if win.since is not None else min(starts, default=now - 3600)
            end = win.until if win.until is not None else now
            return DevicesData(rows, windows, start, max(end, start + 60))
        data, problem = self._read(read)
        return data if data is not None else DevicesData(problem=problem)

    def watch(self, now: float) -> WatchData:
        """Every watched target's status and the last week's outages (local stores only)."""
        from netwarden.store import watch_queries
        from netwarden.view.watch import NO_WATCH_TABLES

        def read(conn: ReadSource) -> WatchData:
            if conn.remote or not watch_queries.has_watch_tables(conn.conn):
                raise StoreProblem(NO_WATCH_TABLES + " w returns to the traffic.")
            return WatchData(watch_queries.statuses(conn.conn, now),
                             watch_queries.outages(conn.conn, now - watch_queries.WEEK_S))
        data, problem = self._read(read)
        return data if data is not None else WatchData(problem=problem)

    def _read(self, work: Callable[[ReadSource], T]) -> tuple[T | None, str]:
        """(work's answer, '') when the store answered, else (None, why not)."""
        if self._server is not None:
            return self._read_server(self._server, work)
        try:
            conn = self._connect()
            if schema_version(conn) == 0:
                self._drop()
                return None, (f"{self.path} holds no netwarden data yet (no schema): it is "
                              "empty or another program's file. Is the sensor writing here?")
            return work(conn), ""
        except StoreProblem as exc:
            return None, str(exc)
        except StoreUnavailable as exc:
            self._drop()
            return None, explain_unavailable(exc)
        except OSError as exc:   # e.g. a directory on the path we may not enter
            self._drop()
            return None, (f"cannot read {self.path}: {exc.strerror} (join the 'netwarden' "
                          "group, or pass --db PATH)")
        except sqlite3.OperationalError as exc:
            self._drop()
            if "locked" in str(exc) or "busy" in str(exc):
                return None, (f"{self.path} is locked by another program ({exc}); "
                              "r tries again")
            return None, f"cannot read {self.path}: {exc}"
        except sqlite3.DatabaseError as exc:
            self._drop()
            return None, f"{self.path} is not a readable netwarden database: {exc}"

    def _read_server(self, server: ServerSource,
                     work: Callable[[ReadSource], T]) -> tuple[T | None, str]:
        try:
            if self._conn is None:
                self._conn = server.open()
            return work(self._conn), ""
        except StoreProblem as exc:
            return None, str(exc)
        except RemoteError as exc:
            self._drop()
            return None, f"{exc} (r tries again)"
        except ConfigError as exc:      # the reader's password file
            return None, str(exc)
        except Exception as exc:
            if self._conn is None or not isinstance(exc, self._conn.errors):
                raise
            self._drop()
            return None, f"{server.label}: {str(exc).strip().splitlines()[0]} (r tries again)"

    def interrupt(self) -> None:
        """Stop the running query, if any (from another thread); it ends as a problem."""
        conn = self._conn
        if conn is not None:
            conn.interrupt()

    def _connect(self) -> ReadSource:
        if self._conn is None:
            self._conn = local_source(open_readonly(self.path, timeout=self._timeout),
                                      str(self.path))
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def close(self) -> None:
        self._drop()


def window_text(win: Window, tz: tzinfo | None) -> str:
    if win.since is None or win.until is None:
        return ""
    short = win.until - win.since <= 86400 * 2 // 3
    if short:
        return (f"{format_time(win.since, tz, with_date=False)[:5]}-"
                f"{format_time(win.until - 1, tz, with_date=False)[:5]}")
    return f"{format_time(win.since, tz)} to {format_time(win.until - 1, tz)}"


def key_name(key: int | str) -> str:
    """curses' key (an int for special keys, a str for characters) as handle_key names it."""
    if isinstance(key, int):
        name = curses.keyname(key).decode("ascii", "replace")
        return "KEY_BACKSPACE" if name == "^?" else name
    if key in _BACKSPACES:
        return "KEY_BACKSPACE"
    if key == "\r":
        return "\n"
    return key


@dataclass(frozen=True)
class LoadRequest:
    serial: int
    dimension: str
    window: Window
    state: BrowserState
    now: float = 0.0


@dataclass(frozen=True)
class LoadResult:
    serial: int
    rows: list[TrafficTotal]
    problem: str
    devices: DevicesData | None = None    # set for a request of the devices view
    watch: WatchData | None = None        # set for a request of the connectivity view
    baseline: BaselineSummary | None = None   # read with the traffic


class BackgroundReader:
    """Runs the store's queries in a thread, so keys work while a long range is summed.

    One request waits at most (a newer one replaces it, and interrupts the running query);
    results carry the request's serial so the screen ignores superseded ones.
    """

    def __init__(self, reader: StoreReader) -> None:
        self.reader = reader
        self._requests: queue.Queue[LoadRequest | None] = queue.Queue(maxsize=1)
        self.results: queue.Queue[LoadResult] = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._run, name="tui-reader", daemon=True)
        self._thread.start()

    def submit(self, request: LoadRequest) -> None:
        try:
            self._requests.get_nowait()
        except queue.Empty:
            pass
        self._requests.put_nowait(request)
        self.reader.interrupt()

    def _run(self) -> None:
        while (request := self._requests.get()) is not None:
            if request.state.view is View.DEVICES:
                data = self.reader.devices(request.window, request.now)
                result = LoadResult(request.serial, [], data.problem, data)
            elif request.state.view is View.WATCH:
                watch = self.reader.watch(request.now)
                result = LoadResult(request.serial, [], watch.problem, watch=watch)
            else:
                rows, problem = self.reader.totals(request.dimension, request.window,
                                                   request.state)
                result = LoadResult(request.serial, rows, problem,
                                    baseline=self.reader.baseline(request.now))
            try:
                self.results.put(result, timeout=5)
            except queue.Full:   # the screen is gone or stuck; a newer result will come
                pass

    def stop(self) -> None:
        self.reader.interrupt()
        try:
            self._requests.get_nowait()
        except queue.Empty:
            pass
        self._requests.put_nowait(None)


class TuiApp:
    def __init__(self, options: TuiOptions) -> None:
        self.options = options
        self.state = BrowserState(time_range=options.time_range, units=options.units)
        self.reader = StoreReader(options.db_path, options.busy_timeout_s,
                                  options.known_devices, options.server)
        self.background = BackgroundReader(self.reader)
        self.mutes_path = options.mutes_path or default_mutes_path()
        self.rows: list[TrafficTotal] = []
        self.devices: DevicesData | None = None
        self.watch: WatchData | None = None
        self.baseline: BaselineSummary | None = None
        self.mute_list: MuteListData | None = None
        self.problem = ""
        self.message = ""
        self.window = Window(None, None)
        self.requested_at = 0.0
        self.serial = 0          # of the latest request
        self.shown_serial = 0    # of the rows on screen
        self.shown_query: tuple[object, ...] = ()

    def request(self) -> None:
        """Ask for what the current view shows; the screen says it is reading."""
        if self.state.view is View.MUTES:
            self.read_mutes()
            return
        now = self.options.clock()
        if self.state.view is View.DEVICES:
            self._submit("", window(self.state.presence_range, 0, now), now)
            return
        if self.state.view is View.WATCH:
            self._submit("", Window(None, None), now)
            return
        self.window = window(self.state.time_range, self.state.offset, now)
        query = (self.state.dimension, self.state.filters, self.state.time_range,
                 self.state.offset)
        if query != self.shown_query:   # other rows: do not show the old ones meanwhile
            self.rows, self.problem, self.shown_query = [], "", query
        self._submit(self.state.dimension, self.window, now)

    def _submit(self, dimension: str, win: Window, now: float) -> None:
        self.serial += 1
        self.requested_at = time.monotonic()
        self.message = "reading the store ..."
        self.background.submit(LoadRequest(self.serial, dimension, win, self.state, now))

    def collect(self) -> bool:
        """Apply the newest finished result; True when the screen changed."""
        changed = False
        while True:
            try:
                result = self.background.results.get_nowait()
            except queue.Empty:
                return changed
            if result.serial != self.serial:
                continue
            self.shown_serial = result.serial
            self.message = f"read {format_time(self.options.clock(), self.options.tz, False)}"
            if result.watch is not None:
                self.watch, changed = result.watch, True
                continue
            if result.devices is not None:
                self.devices = result.devices
                count = len(result.devices.rows)
                if self.state.device_cursor >= count:
                    self.state = dataclasses.replace(self.state,
                                                     device_cursor=max(0, count - 1))
                changed = True
                continue
            self.rows, self.problem = result.rows, result.problem
            self.baseline = result.baseline
            shown = len(visible_rows(self.state, self.rows))
            if self.state.cursor >= shown:
                self.state = dataclasses.replace(self.state, cursor=max(0, shown - 1))
            changed = True

    # ---- the notifier's mute list (the user's mutes file) ----

    def read_mutes(self) -> None:
        try:
            entries = mute_entries(load_mutes(self.mutes_path))
            self.mute_list = MuteListData(str(self.mutes_path), entries)
        except MuteFileError as exc:
            self.mute_list = MuteListData(str(self.mutes_path), problem=str(exc))
        count = len(self.mute_list.entries)
        if self.state.mute_cursor >= count:
            self.state = dataclasses.replace(self.state, mute_cursor=max(0, count - 1))

    def toggle_mute(self) -> None:
        """`m` in the traffic view: mute the selected program, or unmute it if it is muted."""
        program = mute_target(self.state, self.rows)
        if program is None:
            self.message = ("m mutes a program: group by executable or name (g), or filter "
                            "on one")
            return
        try:
            if program in load_mutes(self.mutes_path).programs:
                remove_mutes(self.mutes_path, programs=[program])
                self.message = f"unmuted {program}: the notifier shows it again"
            else:
                add_mutes(self.mutes_path, programs=[program])
                self.message = f"muted {program} for the notifier (m again unmutes, M lists)"
        except MuteFileError as exc:
            self.message = f"cannot change the mutes: {exc}"

    def unmute_selected(self) -> None:
        """`m` or Delete in the mute list: remove the selected entry."""
        entries = self.mute_list.entries if self.mute_list else ()
        if not entries:
            return
        entry = entries[min(self.state.mute_cursor, len(entries) - 1)]
        try:
            if entry.what == "program":
                remove_mutes(self.mutes_path, programs=[entry.value])
            else:
                remove_mutes(self.mutes_path, kinds=[entry.value])
            self.message = f"unmuted {entry.value}"
        except MuteFileError as exc:
            self.message = f"cannot change the mutes: {exc}"
        self.read_mutes()

    @property
    def loading(self) -> bool:
        return self.shown_serial != self.serial

    def screen(self) -> Screen:
        return Screen(self.state, self.rows, window_text(self.window, self.options.tz),
                      self.problem, self.message, self.loading, self.devices, self.mute_list,
                      self.options.clock(), self.watch, self.baseline)

    def press(self, key: str, height: int) -> Action:
        """Apply one key (named as handle_key names them); returns its action once done."""
        devices = len(self.devices.rows) if self.devices else 0
        mutes = len(self.mute_list.entries) if self.mute_list else 0
        view = self.state.view
        self.state, action = handle_key(self.state, key, self.rows,
                                        view_page_size(self.state.view, height),
                                        devices=devices, mutes=mutes)
        if self.state.view is not view:
            self.message = ""     # e.g. a mute's confirmation belongs to the view it was made in
        if action is Action.QUERY:
            self.request()
        elif action is Action.MUTE:
            self.toggle_mute()
        elif action is Action.UNMUTE:
            self.unmute_selected()
        return action

    def draw(self, stdscr: curses.window) -> None:
        height, width = stdscr.getmaxyx()
        frame = render(self.screen(), width, height, self.options.tz, system_user_name)
        stdscr.erase()
        for y, line in enumerate(frame.lines[:height]):
            attr = curses.A_REVERSE if y == frame.highlight or y == 0 else curses.A_NORMAL
            try:
                stdscr.addnstr(y, 0, line, width, attr)
            except curses.error:
                pass   # the bottom-right cell cannot be written without scrolling
        stdscr.refresh()

    def run(self, stdscr: curses.window) -> None:
        curses.curs_set(0)
        stdscr.keypad(True)
        stdscr.timeout(100)
        self.request()
        self.draw(stdscr)
        while True:
            if self.collect():
                self.draw(stdscr)
            try:
                key: int | str = stdscr.get_wch()
            except curses.error:   # no key within the timeout
                if self.state.live and not self.loading and (
                        time.monotonic() - self.requested_at >= self.options.live_interval_s):
                    self.request()
                    self.draw(stdscr)
                continue
            if key == curses.KEY_RESIZE:
                curses.update_lines_cols()
                self.draw(stdscr)
                continue
            height, _ = stdscr.getmaxyx()
            if self.press(key_name(key), height) is Action.QUIT:
                return
            self.draw(stdscr)


def run_tui(options: TuiOptions) -> int:
    os.environ.setdefault("ESCDELAY", "25")   # Esc cancels a search at once
    # Size from the terminal, never from LINES/COLUMNS left in the environment (a shell or a
    # test runner exports them): with them set, ncurses ignores every resize.
    for name in ("LINES", "COLUMNS"):
        os.environ.pop(name, None)
    app = TuiApp(options)
    try:
        curses.wrapper(app.run)
    finally:
        app.background.stop()
    return 0
