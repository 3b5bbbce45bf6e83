"""The TUI's screen as text, golden-tested at 80x24 (regenerate: NETWARDEN_GOLDEN=write)."""

from __future__ import annotations

import os
from datetime import timezone
from pathlib import Path

import pytest

from netwarden.model.baseline import BaselineMode, BaselineSummary
from netwarden.model.baseline import Mode as BaselineState
from netwarden.store.traffic_queries import Filter, TrafficTotal
from netwarden.view.units import ByteUnit, UnitSystem
from netwarden.viewer_tui.render import Screen, page_size, render
from netwarden.viewer_tui.state import BrowserState, Mode

GOLDEN = Path(__file__).parent / "golden"
T0 = 1_700_000_000   # 2023-11-14 22:13:20 UTC
ROWS = [TrafficTotal("/usr/lib/firefox/firefox", 50_000, 3_000_000, T0 - 1200, T0 - 300),
        TrafficTotal("/usr/sbin/nginx", 700_000, 9_000, T0 - 300, T0 - 300),
        TrafficTotal("/opt/a/very/long/path/that/does/not/fit/in/the/column/bin/tool", 5, 7,
                     T0 - 60, T0 - 60),
        TrafficTotal("/usr/bin/curl", 1_000, 50_000, T0 - 600, T0 - 600)]


def frame(state: BrowserState, width: int = 80, height: int = 24, **kw: object) -> str:
    screen = Screen(state, kw.pop("rows", ROWS), "21:13-22:13", **kw)  # type: ignore[arg-type]
    return "\n".join(render(screen, width, height, timezone.utc, lambda uid: "alice").lines)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("NETWARDEN_GOLDEN") == "write":
        path.write_text(text + "\n")
    assert text + "\n" == path.read_text()


def test_first_screen_80x24():
    check_golden("tui_first_80x24.txt", frame(BrowserState(), message="read 22:13:20"))


def test_the_baseline_badge_leads_the_filters_line():
    learning = BaselineSummary(BaselineMode(BaselineState.LEARNING, T0 + 86400, T0))
    check_golden("tui_baseline_80x24.txt", frame(BrowserState(), baseline=BaselineSummary(
        BaselineMode(BaselineState.ENFORCING, T0 - 60, T0 - 86400), drift=3)))
    assert frame(BrowserState(), baseline=learning).splitlines()[1].startswith(
        "[baseline learning until 11-15 22:13] filters: none")
    off = BaselineSummary(BaselineMode(BaselineState.OFF))
    assert frame(BrowserState(), baseline=off) == frame(BrowserState())


def test_filtered_excluded_in_kib_80x24():
    state = BrowserState(dimension="raddr", unit=ByteUnit.KIB, cursor=1, filters=(
        Filter("exe", "/usr/bin/curl"), Filter("rport", "53", exclude=True)))
    rows = [TrafficTotal("93.184.216.34", 1000, 50000, T0 - 600, T0 - 600),
            TrafficTotal("8.8.8.8", 60, 120, T0 - 600, T0 - 500)]
    check_golden("tui_filtered_80x24.txt", frame(state, rows=rows))


def test_si_units_from_the_config_80x24():
    """[view] units = "si": the same rows as the first screen in kB/MB, as the web page."""
    text = frame(BrowserState(units=UnitSystem.SI), message="read 22:13:20")
    check_golden("tui_si_80x24.txt", text)
    assert "3.0 MB" in text and "700.0 kB" in text and "KiB" not in text and "MiB" not in text


@pytest.mark.parametrize("width, height", [(80, 24), (132, 50), (100, 30)])
def test_every_line_is_exactly_the_width_and_the_screen_the_height(width: int, height: int):
    lines = render(Screen(BrowserState(), ROWS, ""), width, height, timezone.utc).lines
    assert len(lines) == height
    assert {len(line) for line in lines} == {width}


def test_wide_terminals_get_a_total_column():
    assert "TOTAL" in frame(BrowserState(), width=120)
    assert "TOTAL" not in frame(BrowserState(), width=80)


def test_the_selected_row_is_marked_and_highlighted():
    screen = Screen(BrowserState(cursor=1), ROWS, "")
    rendered = render(screen, 80, 24, timezone.utc)
    assert rendered.highlight is not None
    assert rendered.lines[rendered.highlight].startswith("> /usr/sbin/nginx")


def test_long_values_keep_their_end():
    assert "  ..not/fit/in/the/column/bin/tool " in frame(BrowserState())


def test_a_problem_replaces_the_table():
    text = frame(BrowserState(), rows=[], problem="no database at /x.db (is the sensor "
                                                  "running? pass --db PATH to read another file)")
    assert "no database at /x.db" in text and "no data" in text


def test_empty_range_says_what_to_do():
    assert "no traffic here (t changes the range" in frame(BrowserState(), rows=[])


def test_help_and_search_prompt():
    assert "Backspace       remove the last filter" in frame(BrowserState(mode=Mode.HELP))
    assert "search: fire_" in frame(BrowserState(mode=Mode.SEARCH, prompt="fire"))


def test_users_are_shown_with_their_names():
    rows = [TrafficTotal(1000, 1, 2, T0, T0)]
    assert "1000 (alice)" in frame(BrowserState(dimension="user"), rows=rows)


@pytest.mark.parametrize("height, page", [(24, 20), (5, 1), (1, 1)])
def test_page_size(height: int, page: int):
    assert page_size(height) == page
