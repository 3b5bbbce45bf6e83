"""The scheduled report's calendar: next due times for a day, a week and a month in local time,
across a daylight-saving change, and the newest missed one after an outage."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from netwarden.report_schedule import ReportSchedule, ScheduleError, parse_clock

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp()


def shown(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, BERLIN).strftime("%a %Y-%m-%d %H:%M")


def test_daily_is_today_until_the_time_then_tomorrow() -> None:
    daily = ReportSchedule.parse("day", "08:00")
    assert shown(daily.next_after(at("2026-12-07T07:59"), BERLIN)) == "Mon 2026-12-07 08:00"
    assert shown(daily.next_after(at("2026-12-07T08:00"), BERLIN)) == "Tue 2026-12-08 08:00"


def test_weekly_goes_to_the_named_weekday() -> None:
    weekly = ReportSchedule.parse("week", "18:30", "fri")
    assert shown(weekly.next_after(at("2026-12-07T12:00"), BERLIN)) == "Fri 2026-12-11 18:30"
    assert shown(weekly.next_after(at("2026-12-11T18:30"), BERLIN)) == "Fri 2026-12-18 18:30"
    assert shown(weekly.next_after(at("2026-12-11T18:29"), BERLIN)) == "Fri 2026-12-11 18:30"


def test_monthly_is_the_first_of_the_month() -> None:
    monthly = ReportSchedule.parse("month", "00:05")
    assert shown(monthly.next_after(at("2026-12-07T12:00"), BERLIN)) == "Fri 2027-01-01 00:05"
    assert shown(monthly.next_after(at("2026-12-01T00:04"), BERLIN)) == "Tue 2026-12-01 00:05"


def test_the_local_time_holds_across_a_daylight_saving_change() -> None:
    daily = ReportSchedule.parse("day", "08:00")
    before = daily.next_after(at("2027-03-27T09:00"), BERLIN)     # the night clocks go forward
    assert shown(before) == "Sun 2027-03-28 08:00"
    assert before - at("2027-03-27T08:00") == 23 * 3600


def test_after_an_outage_only_the_newest_missed_time_is_due() -> None:
    weekly = ReportSchedule.parse("week", "08:00", "mon")
    first = at("2026-12-07T08:00")
    assert shown(weekly.latest_due(first, at("2026-12-30T12:00"), BERLIN)) == \
        "Mon 2026-12-28 08:00"
    assert weekly.latest_due(first, first + 60, BERLIN) == first


@pytest.mark.parametrize("text", ["8", "24:00", "08:60", "8:5", "", "ab:cd", "08:00:00"])
def test_bad_times_of_day_are_refused(text: str) -> None:
    with pytest.raises(ScheduleError):
        parse_clock(text)


def test_bad_period_and_weekday_are_refused() -> None:
    with pytest.raises(ScheduleError, match="period"):
        ReportSchedule.parse("year", "08:00")
    with pytest.raises(ScheduleError, match="weekday"):
        ReportSchedule.parse("week", "08:00", "monday")
