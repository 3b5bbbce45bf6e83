"""The connectivity watch: probes each [watch] target every interval, inside its schedule,
and turns runs of results into up/down windows and target_down / target_up events.

Runs as a thread of `netwarden discovery` (or alone: `netwarden watch run`). Each round
probes the targets that are due, at once (a thread each, up to ``workers``), then writes
the samples, the window changes and the events in one transaction. Outside its schedule a
target is not probed; its open window closes and it starts afresh (unknown) when the
schedule resumes. Members of a group raise no events of their own: the group does, when
all of them are down and when one answers again (docs/watch.md).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from netwarden.config import WatchConfig
from netwarden.discovery.probes import run_probe
from netwarden.model.schedule import Schedule, parse_schedule
from netwarden.model import Event, EventKind, HealthSample
from netwarden.model.watch import (
    ProbeResult,
    State,
    TargetState,
    WatchTarget,
    group_state,
    on_result,
)
from netwarden.stopper import Stopper
from netwarden.store.watch_writer import StateChange, WatchWriter

log = logging.getLogger("netwarden.watch")

#: How often samples older than [watch] sample_days are deleted.
PRUNE_EVERY_S = 3600.0


def _local_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


class Watcher:
    def __init__(self, config: WatchConfig, writer: WatchWriter, stop: Stopper,
                 clock: Callable[[], float] = time.time,
                 local_now: Callable[[], dt.datetime] = _local_now,
                 probe: Callable[[WatchTarget], ProbeResult] = run_probe,
                 workers: int = 16) -> None:
        self.config = config
        self.targets = config.targets()
        self.writer = writer
        self.stop = stop
        self.clock = clock
        self.local_now = local_now
        self.probe = probe
        self.workers = max(1, min(workers, len(self.targets)))
        self.schedules: dict[str, Schedule] = {
            t.name: parse_schedule(t.schedule) for t in self.targets}
        self.groups: dict[str, list[str]] = {}
        for target in self.targets:
            if target.group:
                self.groups.setdefault(target.group, []).append(target.name)
        writer.register(self.targets)
        self.states = {name: TargetState()
                       for name in [t.name for t in self.targets] + list(self.groups)}
        self._resume(writer.restore())
        self.due = {t.name: 0.0 for t in self.targets}
        self._pruned = 0.0
        self.failed_rounds = 0     # in a row; written as a health row once one succeeds

    def _resume(self, restored: dict[str, tuple[TargetState, float]]) -> None:
        """Take up the open windows the last run left, unless they went unwatched for longer
        than a few intervals (the watch was stopped, the machine off): those end at their
        last probe, since nobody knows what happened after it."""
        interval = {t.name: t.interval_s + t.timeout_s for t in self.targets}
        for group, members in self.groups.items():
            interval[group] = max(interval[m] for m in members)
        now, stale = self.clock(), []
        for name, (state, last) in restored.items():
            if name not in self.states:
                continue
            self.states[name] = state
            if now - last > 3 * interval[name]:
                stale.append(self._change(name, TargetState(), last))
        if stale:
            self.writer.record([], stale, [])

    def scheduled(self, target: WatchTarget) -> bool:
        return self.schedules[target.name].expected_since(self.local_now()) is not None

    def run_round(self, targets: Sequence[WatchTarget]) -> list[Event]:
        """Probe ``targets`` now (those in their schedule), record what follows; the events.
        A round whose write fails leaves the remembered states as they were, so memory and
        store never disagree (the next round decides again)."""
        saved = dict(self.states)
        try:
            events = self._round(targets)
        except BaseException:
            self.states = saved
            self.failed_rounds += 1
            raise
        self.failed_rounds = 0
        return events

    def _round(self, targets: Sequence[WatchTarget]) -> list[Event]:
        now = self.clock()
        changes: list[StateChange] = []
        for target in targets:
            if not self.scheduled(target) and self.states[target.name].state is not State.UNKNOWN:
                changes.append(self._change(target.name, TargetState(), now))
        probed = [t for t in targets if self.scheduled(t)]
        results = self._probe_all(probed)
        by_name = {t.name: t for t in self.targets}
        events: list[Event] = []
        for result in results:
            change = self._change(result.target, on_result(
                self.states[result.target], result, self.config.fail_after,
                self.config.recover_after), result.time)
            changes.append(change)
            target = by_name[result.target]
            if not target.group:
                events.extend(self._events(change, target.name, str(target.probe), "", result))
        for group, members in self.groups.items():
            events.extend(self._group_round(group, members, now, changes))
        # Rounds that could not be written (a locked or full store) are counted where the
        # viewers and `netwarden health` see them, as soon as the store takes writes again.
        health = [HealthSample(int(now), "watch", "rounds_failed", self.failed_rounds)] \
            if self.failed_rounds else []
        self.writer.record(results, changes, events, health)
        for event in events:
            log.warning("%s: %s", event.kind.value, event.field_dict())
        return events

    def _change(self, name: str, after: TargetState, at: float) -> StateChange:
        change = StateChange(name, self.states[name], after, at)
        self.states[name] = after
        return change

    def _probe_all(self, targets: Sequence[WatchTarget]) -> list[ProbeResult]:
        if len(targets) <= 1 or self.workers == 1:
            return [self.probe(t) for t in targets]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(self.probe, targets))

    def _group_round(self, group: str, members: list[str], now: float,
                     changes: list[StateChange]) -> list[Event]:
        states = [self.states[m] for m in members]
        wanted = group_state([s.state for s in states])
        before = self.states[group]
        if wanted is before.state:
            if wanted is not State.UNKNOWN:
                changes.append(self._change(group, before, now))
            return []
        if wanted is State.DOWN:
            since = max(s.since for s in states)
        elif wanted is State.UP:
            since = min(s.since for s in states if s.state is State.UP)
        else:
            since = now
        reason = "; ".join(f"{m}: {s.reason}" for m, s in zip(members, states) if s.reason)
        after = TargetState(wanted, max(since, before.since), reason=reason)
        change = self._change(group, after, now)
        changes.append(change)
        return self._events(change, group, "group", group, None, members)

    def _events(self, change: StateChange, name: str, probe: str, group: str,
                result: ProbeResult | None, members: Sequence[str] = ()) -> list[Event]:
        before, after = change.before, change.after
        fields: dict[str, object] = {"target": name, "probe": probe, "group": group}
        if members:
            fields["members"] = list(members)
        if after.state is State.DOWN and before.state is not State.DOWN:
            return [Event.of(change.at, EventKind.TARGET_DOWN, since=after.since,
                             reason=after.reason, failures=self.config.fail_after, **fields)]
        if after.state is State.UP and before.state is State.DOWN:
            latency = None if result is None or result.latency_s is None \
                else round(result.latency_s * 1000, 3)
            return [Event.of(change.at, EventKind.TARGET_UP, since=after.since,
                             down_since=before.since,
                             downtime_s=round(after.since - before.since, 3),
                             reason=before.reason, latency_ms=latency, **fields)]
        return []

    def run(self) -> None:
        """Rounds until stopped: each target when its interval has passed."""
        log.info("watching %d targets", len(self.targets))
        if not self.targets:
            return
        while not self.stop.is_set():
            now = self.clock()
            due = [t for t in self.targets if self.due[t.name] <= now]
            if due:
                try:
                    self.run_round(due)
                except Exception:  # noqa: BLE001 - a failed round must not end the watch
                    log.exception("watch round failed")
                for target in due:   # a round longer than an interval: due again at once
                    self.due[target.name] = now + target.interval_s
            self._prune(now)
            self.stop.wait(max(0.0, min(self.due.values()) - self.clock()))

    def _prune(self, now: float) -> None:
        if now - self._pruned >= PRUNE_EVERY_S:
            self._pruned = now
            self.writer.prune_samples(now - self.config.sample_days * 86400)
