"""When the notifier sends its scheduled report: pure arithmetic on local calendar times.

A schedule is a period (day, week or month, as ``netwarden report --period``), a time of day
and, for a week, a weekday; a month's report goes out on the 1st. Times are local wall-clock
times, so a report set for 08:00 stays at 08:00 across a daylight-saving change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from datetime import tzinfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PERIODS = ("day", "week", "month")

#: The most scheduled times stepped over to find the latest one missed (a daily report after
#: years switched off): beyond it, the schedule restarts from now.
_MAX_STEPS = 10_000


class ScheduleError(ValueError):
    """A report time or weekday that cannot be read."""


def parse_clock(text: str) -> dt.time:
    """``HH:MM`` (24-hour) as a time of day."""
    hours, sep, minutes = text.partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ScheduleError(f"{text!r} is not a time of day like 08:00")
    if int(hours) > 23 or int(minutes) > 59:
        raise ScheduleError(f"{text!r} is not a time of day like 08:00")
    return dt.time(int(hours), int(minutes))


@dataclass(frozen=True)
class ReportSchedule:
    period: str            # day | week | month
    at: dt.time            # local time of day
    weekday: int = 0       # 0 = Monday; used by a weekly schedule only

    @classmethod
    def parse(cls, period: str, at: str, weekday: str = "mon") -> "ReportSchedule":
        if period not in PERIODS:
            raise ScheduleError(f"period {period!r} is not one of {', '.join(PERIODS)}")
        if weekday not in WEEKDAYS:
            raise ScheduleError(f"weekday {weekday!r} is not one of {', '.join(WEEKDAYS)}")
        return cls(period, parse_clock(at), WEEKDAYS.index(weekday))

    def describe(self) -> str:
        at = self.at.strftime("%H:%M")
        if self.period == "day":
            return f"daily at {at}"
        if self.period == "week":
            return f"weekly on {WEEKDAYS[self.weekday].capitalize()} at {at}"
        return f"monthly on the 1st at {at}"

    def _on(self, day: dt.date, tz: tzinfo | None) -> dt.datetime:
        return dt.datetime.combine(day, self.at, tzinfo=tz)

    def _first_on_or_after(self, day: dt.date) -> dt.date:
        if self.period == "day":
            return day
        if self.period == "week":
            return day + dt.timedelta(days=(self.weekday - day.weekday()) % 7)
        if day.day == 1:
            return day
        return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)

    def next_after(self, moment: float, tz: tzinfo | None = None) -> float:
        """The first scheduled time strictly after ``moment`` (epoch seconds).

        ``tz`` None means the machine's local time zone (naive datetimes are local times).
        """
        local = dt.datetime.fromtimestamp(moment, tz)
        day = self._first_on_or_after(local.date())
        while self._on(day, tz).timestamp() <= moment:
            day = self._first_on_or_after(day + dt.timedelta(days=1))
        return self._on(day, tz).timestamp()

    def latest_due(self, due: float, now: float, tz: tzinfo | None = None) -> float:
        """The latest scheduled time in [due, now], given ``due`` <= ``now`` is one: after
        an outage only the newest missed report is sent, not one per missed period."""
        latest = due
        for _ in range(_MAX_STEPS):
            following = self.next_after(latest, tz)
            if following > now:
                return latest
            latest = following
        return latest
