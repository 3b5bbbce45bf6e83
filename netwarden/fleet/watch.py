"""The silent-host rule: ``host_silent`` when a host that should be up has sent no heartbeat
for longer than its grace, ``host_back`` when one arrives again.

Pure functions over the latest heartbeats; the watcher's memory of which hosts it has called
silent is the events it wrote (so a restart neither repeats an alarm nor forgets one).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from netwarden.model.schedule import ALWAYS, Schedule
from netwarden.model import Event, EventKind
from netwarden.store.fleet_queries import FleetHost


@dataclass(frozen=True)
class Verdict:
    host: str
    expected: bool          # the schedule says it should be up now
    quiet_s: float          # seconds without a heartbeat (since the schedule began, if later)
    fresh: bool             # its last heartbeat is within the grace


def judge(host: FleetHost, schedule: Schedule, grace_s: float, now: dt.datetime) -> Verdict:
    expected_since = schedule.expected_since(now)
    last = host.last_heartbeat
    fresh = now.timestamp() - last <= grace_s
    if expected_since is None:
        return Verdict(host.host, False, 0.0, fresh)
    quiet_from = max(last, expected_since.timestamp()) if not schedule.always else last
    return Verdict(host.host, True, max(0.0, now.timestamp() - quiet_from), fresh)


def transitions(hosts: Iterable[FleetHost], silent: set[str], schedules: Mapping[str, Schedule],
                grace_s: float, now: dt.datetime) -> list[Event]:
    """The events to raise now, given the hosts already called ``silent`` (updated here)."""
    events = []
    for host in hosts:
        verdict = judge(host, schedules.get(host.host, schedules.get("*", ALWAYS)), grace_s, now)
        fields = {"host": host.host, "last_heartbeat": host.last_heartbeat,
                  "sink_state": host.state, "behind_rows": host.behind_rows}
        if host.host in silent and verdict.fresh:
            silent.discard(host.host)
            events.append(Event.of(now.timestamp(), EventKind.HOST_BACK, **fields))
        elif host.host not in silent and verdict.expected and verdict.quiet_s > grace_s:
            silent.add(host.host)
            events.append(Event.of(now.timestamp(), EventKind.HOST_SILENT,
                                   silent_s=round(verdict.quiet_s), grace_s=grace_s, **fields))
    return events


def silent_hosts(history: Iterable[tuple[str, Mapping[str, object]]]) -> set[str]:
    """Hosts whose latest fleet event, in ``history`` (kind, fields) order, is host_silent."""
    silent: set[str] = set()
    for kind, fields in history:
        host = str(fields.get("host", ""))
        if kind == EventKind.HOST_SILENT.value:
            silent.add(host)
        elif kind == EventKind.HOST_BACK.value:
            silent.discard(host)
    return silent
