"""The scheduled report (``[notifier] report_period``): built from the store when due, queued in
the outbox like any notice, so it is retried, recorded and survives a restart the same way.

The next due time is kept in the state file (``report_next``): a notifier that was stopped
over the due time sends the newest missed report when it starts again, once, not one per
missed period. A changed schedule starts over from now. A store that cannot be read when the
report is due is retried every ``RETRY_S``; the report is not skipped.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import tzinfo
from pathlib import Path

from netwarden.config import Config
from netwarden.notify.notices import Notice, render_report
from netwarden.report_schedule import ReportSchedule
from netwarden.store.notifier_state import NotifierState, QueuedNotice
from netwarden.store.sqlite_db import StoreUnavailable, open_readonly

log = logging.getLogger("netwarden.notify")

RETRY_S = 60.0


class ScheduledReport:
    def __init__(self, schedule: ReportSchedule, channels: Sequence[str], db_path: Path,
                 top: int, tz: tzinfo | None = None) -> None:
        self.schedule = schedule
        self.channels = tuple(channels)
        self.db_path = db_path
        self.top = top
        self.tz = tz
        self.due = 0.0
        self._retry_at = 0.0

    def restore(self, state: NotifierState, now: float) -> None:
        """Take up the saved due time, or start the schedule from ``now``."""
        saved = state.meta("report_next")
        if state.meta("report_schedule") == self.schedule.describe() and saved is not None:
            self.due = float(saved)
        else:
            self.due = self.schedule.next_after(now, self.tz)
            state.set_meta({"report_schedule": self.schedule.describe(),
                            "report_next": str(self.due)})
        log.info("report %s to %s; next at %s", self.schedule.describe(),
                 ", ".join(self.channels) or "no channel",
                 time.strftime("%Y-%m-%d %H:%M", time.localtime(self.due)))

    def step(self, state: NotifierState, now: float, muted: bool) -> bool:
        """Queue the report if one is due; True when one was queued."""
        if now < self.due or now < self._retry_at:
            return False
        until = self.schedule.latest_due(self.due, now, self.tz)
        following = self.schedule.next_after(now, self.tz)
        meta = {"report_next": str(following), "report_last": str(until)}
        if muted or not self.channels:
            state.set_meta(meta)
            self.due = following
            return False
        try:
            notice = self.build(until, now)
        except (StoreUnavailable, sqlite3.Error) as exc:
            log.warning("cannot read the store for the %s report: %s; retrying in %.0f s",
                        self.schedule.period, exc, RETRY_S)
            self._retry_at = now + RETRY_S
            return False
        state.queue([QueuedNotice(notice.kind, notice.title, notice.to_json())], self.channels,
                    now, meta)
        self.due = following
        log.info("%s report queued for %s", self.schedule.period, ", ".join(self.channels))
        return True

    def build(self, until: float, now: float) -> Notice:
        """The notice of the report of the period ending at ``until``."""
        from netwarden.reports.gather import gather
        from netwarden.store.read_source import local_source
        from netwarden.view import report as shape
        source = local_source(open_readonly(self.db_path), str(self.db_path))
        try:
            report = gather(source, self.schedule.period,
                            until - shape.period_seconds(self.schedule.period), until, self.top)
        finally:
            source.close()
        return render_report(report, shape.render_markdown(report, self.tz), now)


def scheduled_report_from_config(config: Config, db_path: Path, enabled: Sequence[str],
                                 warn: Callable[[str], None] = log.warning,
                                 ) -> ScheduledReport | None:
    """The schedule of ``config``, sent to the channels it names that are ``enabled``."""
    settings = config.notifier
    if settings.report_period == "off":
        return None
    wanted = settings.report_channels or tuple(enabled)
    for name in wanted:
        if name not in enabled:
            warn(f"[notifier] report_channels names {name!r}, which is not enabled; the "
                 "report is not sent there")
    schedule = ReportSchedule.parse(settings.report_period, settings.report_at,
                                    settings.report_weekday)
    return ScheduledReport(schedule, [n for n in wanted if n in enabled], db_path,
                           settings.report_top)
