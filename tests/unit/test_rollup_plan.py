"""How a window splits into raw edges and whole rollup periods (store/rollups.plan)."""

from __future__ import annotations

from netwarden.store.rollups import (
    DAY,
    FAMILIES,
    HOUR,
    QUARTER_HOUR,
    SIX_HOURS,
    Part,
    covering_family,
    plan,
    rollups_of,
    usable,
)

PROCESS, DOMAIN, RADDR = FAMILIES
MIDNIGHT = 1_700_006_400          # a UTC midnight


def spans(parts: list[Part]) -> list[tuple[str, int | None, int | None]]:
    return [(p.rollup.table if p.rollup else "raw", p.since, p.until) for p in parts]


def test_a_window_reads_raw_rows_only_at_its_edges() -> None:
    since, until = MIDNIGHT - 2 * HOUR - 17 * 60, MIDNIGHT + DAY + 7 * HOUR + 40 * 60
    assert spans(plan(since, until, rollups_of(PROCESS))) == [
        ("raw", since, MIDNIGHT - 2 * HOUR - 15 * 60),
        ("rollup_process_15m", MIDNIGHT - 2 * HOUR - 15 * 60, MIDNIGHT - 2 * HOUR),
        ("rollup_process_hour", MIDNIGHT - 2 * HOUR, MIDNIGHT),
        ("rollup_process_day", MIDNIGHT, MIDNIGHT + DAY),
        ("rollup_process_6h", MIDNIGHT + DAY, MIDNIGHT + DAY + 6 * HOUR),
        ("rollup_process_hour", MIDNIGHT + DAY + 6 * HOUR, MIDNIGHT + DAY + 7 * HOUR),
        ("rollup_process_15m", MIDNIGHT + DAY + 7 * HOUR, MIDNIGHT + DAY + 7 * HOUR + 30 * 60),
        ("raw", MIDNIGHT + DAY + 7 * HOUR + 30 * 60, until),
    ]


def test_open_ends_need_no_raw_rows_and_short_windows_no_rollups() -> None:
    assert spans(plan(None, None, rollups_of(DOMAIN))) == [("rollup_domain_day", None, None)]
    assert spans(plan(MIDNIGHT + 5, None, rollups_of(RADDR)))[-1] == \
        ("rollup_raddr_day", MIDNIGHT + DAY, None)
    assert spans(plan(MIDNIGHT + 5, MIDNIGHT + 800, rollups_of(PROCESS))) == \
        [("raw", MIDNIGHT + 5, MIDNIGHT + 800)]
    assert plan(MIDNIGHT, MIDNIGHT, rollups_of(PROCESS)) == []


def test_a_series_uses_the_periods_its_bins_hold_whole() -> None:
    periods = {r.period for r in usable(PROCESS, MIDNIGHT, SIX_HOURS)}
    assert periods == {SIX_HOURS, HOUR, QUARTER_HOUR}
    assert {r.period for r in usable(PROCESS, MIDNIGHT, 4 * HOUR)} == {HOUR, QUARTER_HOUR}
    assert {r.period for r in usable(PROCESS, MIDNIGHT + HOUR, DAY)} == {HOUR, QUARTER_HOUR}
    assert usable(PROCESS, MIDNIGHT + 60, HOUR) == []
    assert {r.period for r in usable(DOMAIN, MIDNIGHT)} == {DAY, HOUR}


def test_a_view_mixing_families_has_none() -> None:
    assert covering_family(["f.process_id", "f.host_id"]) == PROCESS
    assert covering_family(["f.host"]) == PROCESS
    assert covering_family(["COALESCE(f.domain_id,0)", "COALESCE(f.domain_id,0)"]) == DOMAIN
    assert covering_family(["f.process_id", "f.raddr_id"]) is None
    assert covering_family(["f.rport"]) is None
