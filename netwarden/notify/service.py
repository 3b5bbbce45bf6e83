"""The notifier process: follow the store's events, decide, queue, deliver.

The main thread polls the read-only database every ``poll_interval_s`` (SQLite cannot tell
another process about new rows), renders each new event, drops muted ones, passes the rest
through flood control and writes the resulting notices to the outbox, with the new cursor and
the flood state, in one transaction of the user's state file. Delivery threads (one per
channel) and the VirusTotal thread work from that file. A missing, locked or not yet created
database is reported once per change of problem and retried every poll; it never stops the
notifier.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from netwarden.config import Config
from netwarden.model.kinds import EVENT_KINDS, REPORT, event_kind, mute_names
from netwarden.mutes import MuteFileError, Mutes, load_mutes
from netwarden.notify.delivery import Channel, DeliveryWorker, RetryPolicy
from netwarden.notify.flood import FloodControl, FloodPolicy
from netwarden.notify.notices import Notice, render_event, render_verdict
from netwarden.notify.scheduled_report import scheduled_report_from_config
from netwarden.notify.settings import Secrets
from netwarden.notify.virustotal import VirusTotalSettings, VirusTotalWorker
from netwarden.stopper import Stopper
from netwarden.view.baseline import baseline_badge
from netwarden.store.baseline import baseline_summary
from netwarden.store.event_queries import RawEvent, events_after, last_event_id
from netwarden.store.notifier_state import (
    LookupRequest,
    NotifierState,
    QueuedNotice,
    VerdictStatus,
)
from netwarden.store.sqlite_db import StoreUnavailable, open_readonly

log = logging.getLogger("netwarden.notify")

#: Events read per poll; a backlog is worked off over several polls.
BATCH = 500
HEARTBEAT_S = 10.0
_SHA256 = re.compile(r"[0-9a-f]{64}")


def channels_from_config(config: Config, secrets: Secrets, bus: str | None,
                         host: str) -> list[Channel]:
    """The enabled channels (imports no third-party module: each does so on first use)."""
    from netwarden.notify.desktop import DesktopChannel
    from netwarden.notify.http_channels import NtfyChannel, WebhookChannel
    from netwarden.notify.mqtt import MqttChannel
    channels: list[Channel] = []
    if config.notifier.desktop:
        channels.append(DesktopChannel(bus))
    if config.webhook.url:
        hook = config.webhook
        channels.append(WebhookChannel(hook.url, secrets.webhook, host, hook.timeout_s,
                                       RetryPolicy(hook.max_attempts, hook.backoff_s)))
    if config.mqtt.host:
        mq = config.mqtt
        channels.append(MqttChannel(mq.host, mq.port, mq.topic, host, mq.username,
                                    secrets.mqtt_password, mq.tls, mq.qos, mq.timeout_s,
                                    RetryPolicy(mq.max_attempts, mq.backoff_s)))
    if config.ntfy.url:
        nt = config.ntfy
        channels.append(NtfyChannel(nt.url, secrets.ntfy_token, nt.timeout_s,
                                    RetryPolicy(nt.max_attempts, nt.backoff_s)))
    return channels


def virustotal_from_config(config: Config, secrets: Secrets) -> VirusTotalSettings | None:
    vt = config.virustotal
    if not vt.enabled:
        return None
    return VirusTotalSettings(vt.base_url, secrets.virustotal_key, vt.requests_per_minute,
                              vt.requests_per_day, vt.malicious_threshold, vt.timeout_s)


def flood_policy(config: Config) -> FloodPolicy:
    n = config.notifier
    return FloodPolicy(n.cooldown_s, n.trouble_cooldown_s, n.max_per_window, n.window_s)


@dataclass(frozen=True)
class Candidate:
    """What one poll found: notices to offer, hashes to look up, what was set aside."""

    notices: tuple[Notice, ...]
    lookups: tuple[LookupRequest, ...]
    unknown_kinds: tuple[str, ...]
    malformed: int


def _fields(event: RawEvent) -> dict[str, object] | None:
    try:
        data = json.loads(event.data)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def lookup_for(kind: str, fields: dict[str, object]) -> LookupRequest | None:
    """The hash a new or changed executable asks VirusTotal about."""
    known = event_kind(kind)
    field_name = "" if known is None else EVENT_KINDS[known].sha256_field
    sha = fields.get(field_name) if field_name else None
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        return None
    path = str(fields.get("path") or "")
    return LookupRequest(sha, path, str(fields.get("name") or os.path.basename(path)))


def examine(events: Sequence[RawEvent], device_changes: bool) -> Candidate:
    """Pure: the notices and lookups a batch of event rows asks for."""
    notices, lookups, unknown, malformed = [], [], [], 0
    for event in events:
        fields = _fields(event)
        if fields is None:
            malformed += 1
            continue
        notice = render_event(event.id, event.time, event.kind, fields, device_changes)
        if notice is not None:
            notices.append(notice)
        elif event_kind(event.kind) is None:
            unknown.append(event.kind)
        request = lookup_for(event.kind, fields)
        if request is not None:
            lookups.append(request)
    return Candidate(tuple(notices), tuple(lookups), tuple(unknown), malformed)


class Notifier:
    def __init__(self, config: Config, db_path: Path, state_path: Path, mutes_path: Path,
                 channels: Sequence[Channel], virustotal: VirusTotalSettings | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.db_path = db_path
        self.state_path = state_path
        self.mutes_path = mutes_path
        self.channels = list(channels)
        self.virustotal = virustotal
        self.clock = clock
        self._db_key = str(db_path.resolve())
        self._config_mutes = Mutes(frozenset(config.notifier.mute_programs),
                                   frozenset(config.notifier.mute_kinds))
        self._mutes = self._config_mutes
        self._mutes_mtime: float | None = None
        self._conn: sqlite3.Connection | None = None
        self._db_inode = 0
        self._cursor: int | None = None
        # On a first run with first_run = "latest": events dated before this are history,
        # also when they reach the database after we first looked (see _initial_cursor).
        self._history_before: float | None = None
        self._problem = ""
        self._vt_seq = 0
        self._heartbeat = 0.0
        self._unknown_seen: set[str] = set()
        self._flood = FloodControl(flood_policy(config))
        self._baseline = ""
        self._scheduled = scheduled_report_from_config(config, db_path,
                                                       [c.name for c in self.channels])

    # ---- the loop ----

    def run(self, stop: Stopper, ready: Callable[[], None] | None = None) -> None:
        state = NotifierState(self.state_path)
        self._restore(state)
        workers = [DeliveryWorker(c, self.state_path, stop, self.clock) for c in self.channels]
        if self.virustotal is not None:
            workers.append(VirusTotalWorker(self.state_path, stop, self.virustotal, self.clock))
        for worker in workers:
            worker.start()
        log.info("notifier following %s; channels: %s%s", self.db_path,
                 ", ".join(c.name for c in self.channels) or "none",
                 "; VirusTotal lookups on" if self.virustotal else "")
        try:
            if ready is not None:
                ready()
            while not stop.is_set():
                self.step(state)
                stop.wait(self.config.notifier.poll_interval_s)
        finally:
            stop.request()  # ends the workers too, whatever ended the loop
            for worker in workers:
                worker.join(timeout=30)
            if self._conn is not None:
                self._conn.close()
            state.set_meta({"stopped": str(self.clock())})
            state.close()

    def _restore(self, state: NotifierState) -> None:
        flood = state.meta("flood")
        self._flood = FloodControl.from_snapshot(flood_policy(self.config),
                                                 json.loads(flood) if flood else None)
        self._vt_seq = int(state.meta("vt_seq") or 0)
        if state.meta("first_start") is None:
            state.set_meta({"first_start": str(self.clock())})
        if self._scheduled is not None:
            self._scheduled.restore(state, self.clock())
        elif state.meta("report_schedule") not in (None, "off"):
            state.set_meta({"report_schedule": "off"})   # `--status` no longer shows one due

    def step(self, state: NotifierState) -> int:
        """One poll: returns the number of events read."""
        now = self.clock()
        self._reload_mutes()
        self._send_scheduled_report(state, now)
        events = self._read_events(state)
        self._note_baseline(now)
        verdicts = state.verdicts_after(self._vt_seq)
        fresh = events if self._history_before is None else \
            [e for e in events if e.time >= self._history_before]
        found = examine(fresh, self.config.notifier.device_changes)
        candidates = list(found.notices)
        candidates += [render_verdict(v.sha256, v.path, v.name, v.malicious, v.total, v.updated)
                       for v in verdicts if v.status is VerdictStatus.MALICIOUS]
        counters: collections.Counter[str] = collections.Counter()
        outgoing: list[Notice] = []
        before = self._flood.snapshot()
        cooled, folded = self._flood.cooled, self._flood.folded
        for notice in candidates:
            names = mute_names(notice.kind, notice.field_dict())
            if any(self._mutes.silences(name, notice.program, notice.name) for name in names):
                counters["muted"] += 1
                continue
            outgoing += self._flood.offer(notice, now)
        outgoing += self._flood.due(now)
        counters["cooled"] += self._flood.cooled - cooled
        counters["folded"] += self._flood.folded - folded
        self._note_unknown(found, counters)
        if not (events or verdicts or outgoing):
            if now - self._heartbeat >= HEARTBEAT_S:
                self._beat(state, now)
            return 0
        cursor = events[-1].id if events else self._cursor
        vt_seq = max(v.seq or 0 for v in verdicts) if verdicts else self._vt_seq
        try:
            self._commit(state, now, outgoing, counters, found.lookups, cursor, vt_seq)
        except sqlite3.Error as exc:
            # Nothing of this poll happened: the same events are read again next time.
            self._flood = FloodControl.from_snapshot(flood_policy(self.config), before)
            log.warning("cannot write the state file %s: %s; retrying", self.state_path, exc)
            return 0
        self._cursor, self._vt_seq = cursor, vt_seq
        return len(events)

    def _send_scheduled_report(self, state: NotifierState, now: float) -> None:
        if self._scheduled is None:
            return
        try:
            self._scheduled.step(state, now, self._mutes.silences(REPORT))
        except sqlite3.Error as exc:   # the state file: the report stays due, tried next poll
            log.warning("cannot queue the scheduled report in %s: %s", self.state_path, exc)

    def _commit(self, state: NotifierState, now: float, outgoing: list[Notice],
                counters: collections.Counter[str], lookups: Sequence[LookupRequest],
                cursor: int | None, vt_seq: int) -> None:
        counters["notices"] += len(outgoing)
        queued = [QueuedNotice(n.kind, n.title, n.to_json()) for n in outgoing]
        meta = self._meta(now) | {"vt_seq": str(vt_seq)}
        state.commit_batch(self._db_key, cursor or 0, queued, [c.name for c in self.channels],
                           now, meta, counters, lookups if self.virustotal is not None else ())
        self._heartbeat = now
        if queued:
            for channel in self.channels:
                dropped = state.trim(channel.name, self.config.notifier.outbox_limit, now)
                if dropped:
                    log.warning("%s: %d undelivered messages dropped (outbox_limit %d)",
                                channel.name, dropped, self.config.notifier.outbox_limit)

    def _meta(self, now: float) -> dict[str, str]:
        return {"flood": json.dumps(self._flood.snapshot()), "vt_seq": str(self._vt_seq),
                "heartbeat": str(now), "pid": str(os.getpid()), "db": self._db_key,
                "store_status": self._problem or "ok", "baseline": self._baseline or "off"}

    def _beat(self, state: NotifierState, now: float) -> None:
        state.set_meta(self._meta(now))
        self._heartbeat = now

    def _note_unknown(self, found: Candidate, counters: collections.Counter[str]) -> None:
        for kind in found.unknown_kinds:
            counters["unknown_kind"] += 1
            if kind not in self._unknown_seen:
                self._unknown_seen.add(kind)
                log.info("ignoring events of kind %r (unknown to this notifier)", kind)
        if found.malformed:
            counters["malformed_event"] += found.malformed
            log.warning("%d event rows with unreadable data skipped", found.malformed)

    def _note_baseline(self, now: float) -> None:
        """The baseline's mode for `notifier --status` and the log (the writers mark what
        they learn, so no notice depends on it)."""
        if self._conn is None:
            return
        try:
            summary = baseline_summary(self._conn, now)
        except sqlite3.Error:
            return   # said by the next read of events
        text = baseline_badge(summary).removeprefix("baseline ")
        if text != self._baseline:
            log.info("baseline: %s", text or "off")
            self._baseline = text

    # ---- mutes ----

    def _reload_mutes(self) -> None:
        try:
            mtime = self.mutes_path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        except OSError as exc:
            log.warning("mute list %s: %s", self.mutes_path, exc.strerror)
            return
        if mtime == self._mutes_mtime:
            return
        self._mutes_mtime = mtime
        try:
            self._mutes = self._config_mutes.union(load_mutes(self.mutes_path))
        except MuteFileError as exc:
            log.warning("%s (keeping the previous mute list)", exc)
            return
        log.info("mutes: programs %s; kinds %s", sorted(self._mutes.programs) or "none",
                 sorted(self._mutes.kinds) or "none")

    # ---- the store ----

    def _report(self, problem: str) -> None:
        if problem != self._problem:
            if problem:
                log.warning("%s; retrying every %.1f s", problem,
                            self.config.notifier.poll_interval_s)
            else:
                log.info("reading events from %s", self.db_path)
            self._problem = problem

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def _connect(self, state: NotifierState) -> sqlite3.Connection | None:
        try:
            inode = os.stat(self.db_path).st_ino
        except OSError:
            inode = 0
        if self._conn is not None and inode == self._db_inode:
            return self._conn
        self._disconnect()
        try:
            conn = open_readonly(self.db_path)
            newest = last_event_id(conn)
        except StoreUnavailable as exc:
            self._report(str(exc))
            return None
        except sqlite3.Error as exc:
            self._report(f"{self.db_path} is not ready: {exc}")
            return None
        self._conn, self._db_inode = conn, inode
        self._cursor = self._initial_cursor(state, conn, newest)
        self._report("")
        return conn

    def _initial_cursor(self, state: NotifierState, conn: sqlite3.Connection,
                        newest: int) -> int:
        saved = state.cursor(self._db_key)
        self._history_before = None
        if saved is not None and saved > newest:
            log.warning("%s has fewer events (%d) than already handled (%d): a new database; "
                        "starting from its first event", self.db_path, newest, saved)
            return 0
        if saved is not None:
            return saved
        if self.config.notifier.first_run == "all":
            return 0
        first_start = float(state.meta("first_start") or self.clock())
        self._history_before = first_start
        cursor = last_event_id(conn, before=first_start)
        log.info("first run: events before this notifier first started (%d) are history",
                 cursor)
        return cursor

    def _read_events(self, state: NotifierState) -> list[RawEvent]:
        conn = self._connect(state)
        if conn is None or self._cursor is None:
            return []
        try:
            return events_after(conn, self._cursor, BATCH)
        except sqlite3.Error as exc:
            self._report(f"cannot read events from {self.db_path}: {exc}")
            self._disconnect()
            return []
