"""When something is expected to be up: a schedule, so a laptop asleep at night is no alarm
(fleet hosts) and an office link is not probed at the weekend (the connectivity watch).

A schedule is ``always`` or days and hours in the watcher's local time, e.g.
``Mon-Fri 08:00-18:00`` or ``Mon,Wed,Sat 09:30-12:00``; several, separated by ``;``, add up.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ScheduleError(ValueError):
    """The text is no schedule; the message says what is allowed."""


@dataclass(frozen=True)
class Period:
    days: frozenset[int]          # 0 = Monday
    start: dt.time
    end: dt.time                  # exclusive; 00:00 means midnight at the day's end


@dataclass(frozen=True)
class Schedule:
    periods: tuple[Period, ...] = ()   # () = always

    @property
    def always(self) -> bool:
        return not self.periods

    def expected_since(self, now: dt.datetime) -> dt.datetime | None:
        """The start of the period ``now`` is in (now's own midnight for 'always' is not
        needed: returns datetime.min), or None when the host need not be up now."""
        if self.always:
            return dt.datetime.min.replace(tzinfo=now.tzinfo)
        for period in self.periods:
            if now.weekday() not in period.days:
                continue
            start = now.replace(hour=period.start.hour, minute=period.start.minute, second=0,
                                microsecond=0)
            end_of_day = period.end == dt.time(0, 0)
            end = now.replace(hour=period.end.hour, minute=period.end.minute, second=0,
                              microsecond=0)
            if start <= now and (end_of_day or now < end):
                return start
        return None


ALWAYS = Schedule()


def _days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in text.lower().split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ScheduleError(f"{part!r} is not a day or a range of days like Mon-Fri")
        low, high = DAYS.index(first), DAYS.index(last or first)
        days.update(range(low, high + 1) if low <= high else [*range(low, 7), *range(high + 1)])
    return frozenset(days)


def _clock(text: str) -> dt.time:
    """"08:00"; "24:00" is midnight at the day's end (stored as 00:00)."""
    hours, sep, minutes = text.partition(":")
    if sep and hours.isdigit() and minutes.isdigit():
        h, m = int(hours), int(minutes)
        if h == 24 and m == 0:
            return dt.time(0, 0)
        if h < 24 and m < 60:
            return dt.time(h, m)
    raise ScheduleError(f"{text!r} is not a time like 08:00")


def parse_schedule(text: str) -> Schedule:
    if text.strip().lower() == "always":
        return ALWAYS
    periods = []
    for part in text.split(";"):
        words = part.split()
        if len(words) != 2 or "-" not in words[1]:
            raise ScheduleError(f"{part.strip()!r} is not like \"Mon-Fri 08:00-18:00\" "
                                "or \"always\"")
        start_text, end_text = words[1].split("-", 1)
        start, end = _clock(start_text), _clock(end_text)
        if end != dt.time(0, 0) and end <= start:
            raise ScheduleError(f"{words[1]!r} ends before it starts")
        periods.append(Period(_days(words[0]), start, end))
    return Schedule(tuple(periods))
