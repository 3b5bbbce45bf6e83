"""The connectivity watch's writer: targets, up/down windows, latency samples and the
target_down / target_up events, in the same store as discovery's.

Its own connection (the watch runs in a thread of `netwarden discovery`, and SQLite
connections stay in the thread that made them). One transaction per round of probes, so a
window never changes without its event. The windows follow model.watch: a change of state
closes the open window where the new one starts (the first probe of the run that changed
it); a result that keeps the state extends the open window's ``last``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from netwarden.model import Event, HealthSample
from netwarden.model.watch import ProbeResult, State, TargetState, WatchTarget
from netwarden.store.sqlite_db import close_writer, transaction
from netwarden.store.writes import insert_events, insert_health, open_host_store


@dataclass(frozen=True)
class StateChange:
    """A target's (or group's) state before and after a round; ``at``: the round's probe."""

    name: str
    before: TargetState
    after: TargetState
    at: float


class WatchWriter:
    def __init__(self, path: Path, now: float, group: str | None = "netwarden",
                 owner: str | None = None, host: str | None = None) -> None:
        store = open_host_store(path, now, group, owner, host)
        self._conn, self.host, self._host_id = store.conn, store.host, store.host_id
        self._ids: dict[str, int] = {}

    def close(self) -> None:
        close_writer(self._conn)

    def register(self, targets: Sequence[WatchTarget]) -> None:
        """Make sure every target and group has its row (probe and group as configured)."""
        groups = sorted({t.group for t in targets if t.group})
        rows = [(t.name, str(t.probe), t.group, 0) for t in targets] + \
            [(g, "group", "", 1) for g in groups]
        with transaction(self._conn):
            self._conn.executemany(
                "INSERT INTO watch_targets (host_id, name, probe, group_name, is_group) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (host_id, name) DO UPDATE SET "
                "probe = excluded.probe, group_name = excluded.group_name, "
                "is_group = excluded.is_group", [(self._host_id, *row) for row in rows])
            # A target no longer configured keeps its history; its open window ends at its
            # last probe.
            names = [row[0] for row in rows]
            self._conn.execute(
                "UPDATE watch_windows SET end = last WHERE end IS NULL AND target_id IN "
                "(SELECT id FROM watch_targets WHERE host_id = ? AND name NOT IN "
                f"({', '.join('?' * len(names))}))", (self._host_id, *names))
        self._ids = {name: int(i) for name, i in self._conn.execute(
            "SELECT name, id FROM watch_targets WHERE host_id = ?", (self._host_id,))}

    def restore(self) -> dict[str, tuple[TargetState, float]]:
        """The state each target was left in (its open window) and that window's latest
        probe, so a restart neither repeats an alarm nor forgets an outage."""
        rows = self._conn.execute(
            "SELECT t.name, w.state, w.start, w.last, w.reason FROM watch_windows w "
            "JOIN watch_targets t ON t.id = w.target_id WHERE t.host_id = ? AND w.end IS NULL",
            (self._host_id,))
        return {name: (TargetState(State(state), start, reason=reason), last)
                for name, state, start, last, reason in rows}

    def record(self, results: Iterable[ProbeResult], changes: Iterable[StateChange],
               events: Sequence[Event], health: Sequence[HealthSample] = ()) -> None:
        with transaction(self._conn):
            self._conn.executemany(
                "INSERT OR REPLACE INTO watch_samples (target_id, time, latency_ms) "
                "VALUES (?, ?, ?)",
                [(self._ids[r.target], r.time,
                  None if r.latency_s is None else round(r.latency_s * 1000, 3))
                 for r in results])
            for change in changes:
                self._apply(self._ids[change.name], change)
            insert_events(self._conn, self._host_id, events)
            insert_health(self._conn, self._host_id, health)

    def _apply(self, target_id: int, change: StateChange) -> None:
        before, after = change.before, change.after
        if after.state is before.state:
            if after.state is not State.UNKNOWN:
                self._conn.execute("UPDATE watch_windows SET last = MAX(last, ?) WHERE "
                                   "target_id = ? AND end IS NULL", (change.at, target_id))
            return
        # The old window ends where the new one starts (or, going unknown, at the probe).
        end = change.at if after.state is State.UNKNOWN else after.since
        self._conn.execute("UPDATE watch_windows SET end = ?, last = MIN(last, ?) WHERE "
                           "target_id = ? AND end IS NULL", (end, end, target_id))
        if after.state is not State.UNKNOWN:
            reason = after.reason if after.state is State.DOWN else ""
            self._conn.execute(
                "INSERT INTO watch_windows (target_id, state, start, last, end, reason) "
                "VALUES (?, ?, ?, ?, NULL, ?)",
                (target_id, after.state.value, after.since, change.at, reason))

    def prune_samples(self, before: float) -> int:
        with transaction(self._conn):
            cursor = self._conn.execute(
                "DELETE FROM watch_samples WHERE time < ? AND target_id IN "
                "(SELECT id FROM watch_targets WHERE host_id = ?)", (before, self._host_id))
        return cursor.rowcount
