"""The curses program: read keys, ask the store, draw what `render` returns.

Everything decided here is decided elsewhere (state.py for keys, render.py for the screen,
netwarden.store.queries for data); this module only connects them to a terminal. A store
that is missing, empty, locked or unreadable is a message on the screen, never a crash: the
viewer keeps running and `r` (or live mode) tries again.
"""

from __future__ import annotations

import curses
import dataclasses
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path

from netwarden.store.queries import TrafficTotal, schema_version, traffic_totals
from netwarden.store.sqlite_db import StoreUnavailable, open_readonly
from netwarden.view.labels import explain_unavailable, format_time, system_user_name
from netwarden.view.ranges import TimeRange, Window, traffic_view, window
from netwarden.viewer_tui.render import Screen, page_size, render
from netwarden.viewer_tui.state import Action, BrowserState, handle_key, visible_rows

_BACKSPACES = {"\x7f", "\x08", "KEY_BACKSPACE"}


@dataclass(frozen=True)
class TuiOptions:
    db_path: Path
    time_range: TimeRange = TimeRange.HOUR
    live_interval_s: float = 2.0
    busy_timeout_s: float = 1.0
    clock: Callable[[], float] = time.time
    tz: tzinfo | None = None       # None: the local time zone


class StoreReader:
    """Keeps one read-only connection; on any failure drops it and says why in words."""

    def __init__(self, path: Path, busy_timeout_s: float) -> None:
        self.path = path
        self._timeout = busy_timeout_s
        self._conn: sqlite3.Connection | None = None

    def totals(self, dimension: str, win: Window,
               state: BrowserState) -> tuple[list[TrafficTotal], str]:
        """(rows, problem): problem is '' when the store answered."""
        try:
            conn = self._connect()
            if schema_version(conn) == 0:
                self._drop()
                return [], (f"{self.path} holds no netwarden data yet (no schema): it is "
                            "empty or another program's file. Is the sensor writing here?")
            return traffic_totals(conn, dimension, traffic_view(win, state.filters)), ""
        except StoreUnavailable as exc:
            self._drop()
            return [], explain_unavailable(exc)
        except OSError as exc:   # e.g. a directory on the path we may not enter
            self._drop()
            return [], (f"cannot read {self.path}: {exc.strerror} (join the 'netwarden' "
                        "group, or pass --db PATH)")
        except sqlite3.OperationalError as exc:
            self._drop()
            if "locked" in str(exc) or "busy" in str(exc):
                return [], (f"{self.path} is locked by another program ({exc}); "
                            "r tries again")
            return [], f"cannot read {self.path}: {exc}"
        except sqlite3.DatabaseError as exc:
            self._drop()
            return [], f"{self.path} is not a readable netwarden database: {exc}"

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_readonly(self.path, timeout=self._timeout)
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


class TuiApp:
    def __init__(self, options: TuiOptions) -> None:
        self.options = options
        self.state = BrowserState(time_range=options.time_range)
        self.reader = StoreReader(options.db_path, options.busy_timeout_s)
        self.rows: list[TrafficTotal] = []
        self.problem = ""
        self.message = ""
        self.window = Window(None, None)
        self.loaded_at = 0.0

    def load(self) -> None:
        now = self.options.clock()
        self.window = window(self.state.time_range, self.state.offset, now)
        self.rows, self.problem = self.reader.totals(self.state.dimension, self.window,
                                                     self.state)
        self.loaded_at = time.monotonic()
        self.message = f"read {format_time(now, self.options.tz, with_date=False)}"
        shown = len(visible_rows(self.state, self.rows))
        if self.state.cursor >= shown:
            self.state = dataclasses.replace(self.state, cursor=max(0, shown - 1))

    def screen(self) -> Screen:
        return Screen(self.state, self.rows, window_text(self.window, self.options.tz),
                      self.problem, self.message)

    def draw(self, stdscr: curses.window, message: str | None = None) -> None:
        height, width = stdscr.getmaxyx()
        screen = self.screen()
        if message is not None:
            screen = dataclasses.replace(screen, message=message)
        frame = render(screen, width, height, self.options.tz, system_user_name)
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
        stdscr.timeout(250)
        self.draw(stdscr, "reading the store ...")
        self.load()
        self.draw(stdscr)
        while True:
            try:
                key: int | str = stdscr.get_wch()
            except curses.error:   # no key within the timeout
                if self.state.live and (time.monotonic() - self.loaded_at
                                        >= self.options.live_interval_s):
                    self.load()
                    self.draw(stdscr)
                continue
            if key == curses.KEY_RESIZE:
                curses.update_lines_cols()
                self.draw(stdscr)
                continue
            height, _ = stdscr.getmaxyx()
            self.state, action = handle_key(self.state, key_name(key), self.rows,
                                            page_size(height))
            if action is Action.QUIT:
                return
            if action is Action.QUERY:
                self.draw(stdscr, "reading the store ...")
                self.load()
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
        app.reader.close()
    return 0
