"""The sensor process: load the hooks, then drain -> resolve -> aggregate -> write until stopped.

Threads: the main thread drains the kernel's flow tables every ``drain_interval_s``; one thread
polls the process-event ring buffer; one hashes executables; one writes windows to the store.
On stop (SIGTERM/SIGINT) the programs are detached first, both tables are read to the last
byte, and the current window is written before the process exits.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from netwarden.config import Config, SensorConfig
from netwarden.model import Event, EventKind, HealthSample, protocol_label
from netwarden.sensor import hooks
from netwarden.sensor.aggregator import (
    ExecSighting,
    FlowGroup,
    ProgramRef,
    Window,
    WindowAggregator,
)
from netwarden.sensor.bpf_records import (
    DNS_MAX,
    PROC_EXEC,
    DatagramNotice,
    DnsEvent,
    ProcEvent,
    ScanProbe,
)
from netwarden.sensor.collectors import (
    CarriedFlow,
    DrainedFlow,
    EventRings,
    FlowDrainer,
    HealthCounters,
    ProcessEvent,
    decode_proc_event,
)
from netwarden.sensor.containers import ContainerResolver
from netwarden.sensor.csvlog import CsvLog
from netwarden.sensor.datagram_hook import DatagramSourceHook
from netwarden.sensor.dns import DnsNames, DnsStreams
from netwarden.sensor.fanotify import ExecutableWatch, FanotifyUnavailable, FileChange
from netwarden.sensor.hashing import HashCache
from netwarden.sensor.identity import ExeRef, ProcessRecord, ProcessTable, ProcFs
from netwarden.sensor.ignore import IgnoreRules
from netwarden.sensor.listening import ListenWatch
from netwarden.sensor.loader import (
    LoadedObject,
    Loader,
    LoadFailure,
    ObjectConfig,
    ProgramStatus,
    cgroup2_root,
    kernel_features,
)
from netwarden.sensor.pinning import PinPlace, ensure_bpffs
from netwarden.sensor.persist import (
    ProgramResolver,
    Retention,
    WindowBatch,
    WindowWriter,
)
from netwarden.sensor.scan import ScanDetector, decode_probe, scan_object_config
from netwarden.sensor.shipping_watch import ShippingWatch
from netwarden.sensor.silent_zero import SilentZeroDetector, read_interface_totals
from netwarden.stopper import Stopper
from netwarden.store.sqlite_writer import SqliteWriter

log = logging.getLogger(__name__)

IPPROTO_TCP = 6
_MAINTENANCE_INTERVAL_S = 30.0
#: Exec records waiting for the next window, in "every executable" mode; more are dropped
#: and counted (a fork bomb must not eat the sensor's memory).
MAX_PENDING_EXECS = 100_000

#: Programs detached only after the final drain (see _shutdown).
DETACH_LAST = frozenset({"cg_sock_release", *hooks.SOCKET_ITERATORS,
                         *hooks.OWNER_GENERATION_HOOKS})

#: Counters whose movement means data was lost: each window where one moves also gets a
#: `sensor_error` event, so the notifier (which follows events) hears of it.
LOSS_COUNTERS = frozenset({
    "flow_map_full", "flow_insert_failed", "bytes_unattributed", "proc_events_lost",
    "windows_dropped",
    "ringbuf_size_mismatch", "store_write_failures", "sock_storage_fail", "fanotify_overflows",
    "execs_dropped", "scan_probes_lost", "carry_full",
})

#: `carry` holds this many flow tables' worth of entries (a window's drains, sockets, and the
#: window being written): allocated as used, so the bound costs nothing until it is needed.
CARRY_TABLES = 4

#: Bits of a carry batch number below the window start: the run (sensor start) number, so
#: a restart inside one window never shares a batch with the run before it.
_RUN_BITS = 16


@dataclass
class UserCounters:
    """Health counters kept in user space, reported as deltas like the kernel's."""

    values: dict[str, int] = field(default_factory=dict)
    _last: dict[str, int] = field(default_factory=dict)

    def set(self, name: str, total: int) -> None:
        self.values[name] = total

    def add(self, name: str, amount: int = 1) -> None:
        self.values[name] = self.values.get(name, 0) + amount

    def deltas(self) -> dict[str, int]:
        moved = {k: v - self._last.get(k, 0) for k, v in self.values.items()
                 if v != self._last.get(k, 0)}
        self._last = dict(self.values)
        return moved


def object_config(spec: hooks.ObjectSpec, cfg: SensorConfig) -> ObjectConfig:
    """What the sensor sets in each object before load (also used by the benchmark)."""
    if spec is hooks.NET_OBJECT:
        return ObjectConfig(
            rodata={"track_packet_sockets": int(cfg.track_packet_sockets)},
            map_entries={"flows_a": cfg.flow_table_entries, "flows_b": cfg.flow_table_entries,
                         # what drains took and the store has not committed: a window or
                         # two of flows (CARRY_TABLES flow tables' worth)
                         "carry": CARRY_TABLES * cfg.flow_table_entries})
    if spec is hooks.EXEC_OBJECT:
        return ObjectConfig(map_entries={"proc_events": cfg.proc_ringbuf_kib * 1024})
    return ObjectConfig()


def failure_events(now: float, statuses: list[ProgramStatus]) -> list[Event]:
    return [Event.of(now, EventKind.SENSOR_ERROR, component=f"{s.object_name}/{s.program}",
                     state=s.state.value, message=s.detail, required=s.required)
            for s in statuses if s.is_failure]


class Sensor:
    def __init__(self, config: Config, *, procfs: ProcFs | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._procfs = procfs or ProcFs()
        self._clock = clock
        self._watch: ExecutableWatch | None = None
        self._hashes = HashCache(on_hashed=self._watch_executable)
        self._table = ProcessTable(self._procfs, on_new_exe=self._prefetch_hash,
                                   exit_grace_s=config.sensor.exit_grace_s)
        self._aggregator = WindowAggregator(config.sensor.write_interval_s)
        self._containers = ContainerResolver(self._procfs.root)
        self._silent_zero = SilentZeroDetector(config.sensor.silent_zero_after_s,
                                               config.sensor.silent_zero_min_bytes)
        self._pending_events: list[Event] = []
        self._pending_health: list[HealthSample] = []
        self._pending_execs: list[ExecSighting] = []
        self._events_lock = threading.Lock()
        self._user_counters = UserCounters()
        self._objects: list[LoadedObject] = []
        self._net: LoadedObject | None = None
        self._rings = EventRings()
        self._dns = DnsNames()
        self._dns_streams = DnsStreams()
        self._datagram_hook: DatagramSourceHook | None = None
        self._health: list[HealthCounters] = []
        self._writer: WindowWriter | None = None
        self._scans = ScanDetector(config.scan)
        self._drainer: FlowDrainer | None = None
        self._run_id = 0
        #: On a clean stop, leave the pinned programs counting for the next sensor.
        self.keep_pinned = False

    # ---- set-up ----

    def _watch_executable(self, dev: int, ino: int, path: str) -> None:
        if self._watch is not None:
            self._watch.watch(path, dev, ino)

    def _on_file_change(self, change: FileChange) -> None:
        self._hashes.invalidate(change.dev, change.ino)

    def _start_watch(self, now: float) -> None:
        try:
            self._watch = ExecutableWatch(self._on_file_change)
        except FanotifyUnavailable as exc:
            log.warning("executables will not be watched: %s", exc)
            self._record_event(Event.of(now, EventKind.SENSOR_ERROR, component="fanotify",
                                        state="unavailable", message=str(exc), required=False))
            return
        self._watch.start()

    def _prefetch_hash(self, ref: ExeRef) -> None:
        if ref.ino and ref.candidates():
            self._hashes.prefetch(ref.dev, ref.ino, ref.candidates())

    def _record_event(self, event: Event) -> None:
        with self._events_lock:
            self._pending_events.append(event)

    def load_hooks(self) -> None:
        """Load and attach; raises LoadFailure when bytes cannot be counted at all."""
        cfg = self._config.sensor
        features = kernel_features(hooks.OBJECTS)
        choice = hooks.choose_hook_sets(features, cfg.hook_set)
        for line in choice.explain():
            log.info("hook set %s", line)
        mode = hooks.choose_bpf_mode(features, cfg.bpf_mode)
        log.info("BPF mode %s: %s", mode.explain(), hooks.NET_OBJECT.filename_for(mode))
        packet_hooks = hooks.choose_packet_hooks(features, mode, cfg.packet_hooks)
        log.info("packet hooks: %s", packet_hooks.explain())
        try:
            cgroup_root: str | None = cgroup2_root(self._procfs.root)
        except OSError as exc:
            cgroup_root = None
            log.warning("%s: peers of unconnected UDP sockets will be missing", exc)
        self._containers = ContainerResolver(self._procfs.root, cgroup_root)
        pins = None
        if cfg.pin_root:
            try:
                ensure_bpffs(cfg.pin_root, self._procfs.root)
                pins = PinPlace.for_store(cfg.pin_root, self._config.db_path)
            except OSError as exc:  # count on without: a crash then loses what it did
                log.warning("no pinning: %s", exc)
                self._record_event(Event.of(
                    self._clock(), EventKind.SENSOR_ERROR, component="pinning",
                    state="unavailable", required=False,
                    message=f"{exc}; counting stops with the sensor and a crash loses the "
                            "window being counted"))
        loader = Loader(features, cgroup_root, mode=mode, packet_hooks=packet_hooks, pins=pins)
        now = self._clock()
        self._net = loader.load(hooks.NET_OBJECT, object_config(hooks.NET_OBJECT, cfg), choice)
        self._objects.append(self._net)
        self._health.append(HealthCounters("net", self._net.map("health")))
        self._report_failures(now, self._net.statuses)
        assert self._net.hook_set is not None
        self._record_event(Event.of(now, EventKind.SENSOR_STARTED,
                                    hook_set=self._net.hook_set.name,
                                    reason=f"{self._net.hook_set.description}; BPF mode "
                                           f"{mode.explain()}; {packet_hooks.explain()}",
                                    pid=os.getpid()))
        exec_obj = self._load_optional(loader, hooks.EXEC_OBJECT,
                                       object_config(hooks.EXEC_OBJECT, cfg), now)
        if exec_obj is not None:
            self._rings.add(exec_obj.map("proc_events"), ProcEvent,
                            lambda raw: self._on_proc_event(decode_proc_event(raw)))
        if packet_hooks.syscall_args:
            self._rings.add(self._net.map("dns_events"), DnsEvent, self._on_dns_event)
        else:
            dns_obj = self._load_optional(loader, hooks.DNS_OBJECT,
                                          object_config(hooks.DNS_OBJECT, cfg), now)
            if dns_obj is not None and dns_obj.is_attached("dns_ingress"):
                self._rings.add(dns_obj.map("dns_events"), DnsEvent, self._on_dns_event)
        if self._config.scan.enabled:
            scan_obj = self._load_optional(loader, hooks.SCAN_OBJECT,
                                           scan_object_config(self._config.scan, features,
                                                              self._procfs.root), now)
            if scan_obj is not None:
                self._rings.add(scan_obj.map("scan_probes"), ScanProbe, self._on_scan_probe)

    def _load_optional(self, loader: Loader, spec: hooks.ObjectSpec, config: ObjectConfig,
                       now: float) -> LoadedObject | None:
        """Load an object the sensor can run without; a failure is reported, not raised."""
        try:
            loaded = loader.load(spec, config)
        except (LoadFailure, OSError) as exc:
            log.warning("%s unavailable: %s", spec.name, exc)
            self._record_event(Event.of(now, EventKind.SENSOR_ERROR, component=spec.name,
                                        state="load failed", message=str(exc), required=False))
            self._user_counters.add(f"hook_failed:{spec.name}")
            return None
        self._objects.append(loaded)
        self._health.append(HealthCounters(spec.name, loaded.map("health")))
        self._report_failures(now, loaded.statuses)
        return loaded

    def _on_dns_event(self, raw: bytes) -> None:
        event = DnsEvent.from_buffer_copy(raw)
        payload = bytes(event.payload[: min(event.length, DNS_MAX)])
        if event.transport == IPPROTO_TCP and event.sock_cookie:
            # A piece of a TCP connection's byte stream, as one receive call read it.
            for message in self._dns_streams.feed(event.sock_cookie, payload,
                                                  bool(event.truncated)):
                self._dns.learn(message, tcp=False)
        else:
            self._dns.learn(payload, tcp=event.transport == IPPROTO_TCP)

    def _on_scan_probe(self, raw: bytes) -> None:
        probe = decode_probe(raw, self._clock() - time.monotonic())
        if probe is not None:
            self._scans.observe(probe)

    def _on_datagram_notice(self, raw: bytes) -> None:
        if self._datagram_hook is not None:
            self._datagram_hook.on_notice(raw)

    def _report_failures(self, now: float, statuses: list[ProgramStatus]) -> None:
        for event in failure_events(now, statuses):
            self._record_event(event)
        for status in statuses:
            if status.is_failure:
                self._user_counters.add(f"hook_failed:{status.object_name}/{status.program}")

    def _on_proc_event(self, event: ProcessEvent) -> None:
        self._table.on_event(event)
        if event.kind == PROC_EXEC and self._config.sensor.record_every_exec:
            record = self._table.lookup(event.pid, event.exe_dev, event.exe_ino, event.uid)
            sighting = ExecSighting(self._clock(), event.pid, self._program_ref(
                record, event.uid, self._containers.container(event.pid, 0, record.cgroup)))
            with self._events_lock:
                if len(self._pending_execs) >= MAX_PENDING_EXECS:
                    self._user_counters.add("execs_dropped")
                else:
                    self._pending_execs.append(sighting)

    # ---- the loop ----

    def run(self, stop: Stopper, store: SqliteWriter,
            ready: Callable[[], None] | None = None) -> None:
        """Drain until ``stop`` is set; hooks must be loaded. Writes everything before return."""
        assert self._net is not None, "load_hooks() first"
        drainer = self._drainer = FlowDrainer.for_net(self._net)
        datagram_hook = self._datagram_hook = DatagramSourceHook(self._net, drainer.control,
                                                                 self._procfs.root)
        if datagram_hook.managed:
            self._rings.add(self._net.map("datagram_notices"), DatagramNotice,
                            self._on_datagram_notice)
            datagram_hook.start()
        self._start_watch(self._clock())
        carried = self._take_over(drainer, store)
        self._report_unclean_stop(store, sum(c.flow.sent_bytes + c.flow.recv_bytes
                                             for c in carried))
        self._report_replaced(store)
        hash_cache = store.load_hash_cache()
        log.info("%d executable hashes reloaded", self._hashes.load(hash_cache))
        self._table.learn_paths((h.path, h.dev, h.ino) for h in hash_cache if h.path)
        resolver = ProgramResolver(self._hashes, store.latest_hash_by_path(), self._clock)
        cfg = self._config
        csv_log = (CsvLog(Path(cfg.log.csv_path), cfg.log.csv_max_bytes, cfg.log.csv_backups)
                   if cfg.log.csv_path else None)
        writer = self._writer = WindowWriter(
            store, resolver, ignore=IgnoreRules.from_config(cfg.ignore), csv_log=csv_log,
            retention=Retention(cfg.store.retention_days),
            shipping=ShippingWatch(Path(cfg.remote.state_path)) if cfg.remote.url else None,
            listen=ListenWatch(self._procfs.root),
            on_committed=drainer.forget if drainer.carrying else None)
        self._hashes.start()
        writer.start()
        self._write_carried(carried, writer)
        poller = threading.Thread(target=self._poll_rings, args=(stop,),
                                  name="rings", daemon=True)
        poller.start()
        if ready:
            ready()
        interval = self._config.sensor.drain_interval_s
        next_drain = time.monotonic() + interval
        next_maintenance = time.monotonic() + _MAINTENANCE_INTERVAL_S
        try:
            while not stop.wait(max(0.0, next_drain - time.monotonic())):
                next_drain += interval
                now = self._clock()
                self._drain_once(drainer.drain(self._carry_batch(now)), writer, now)
                datagram_hook.review()
                if time.monotonic() >= next_maintenance:
                    next_maintenance += _MAINTENANCE_INTERVAL_S
                    self._table.sweep_dead()
                    self._table.expire()
        finally:
            self._shutdown(drainer, writer, poller)

    # ---- taking over from an earlier sensor (pinned maps) ----

    def _carry_batch(self, now: float) -> int:
        """The carry number of the window holding ``now``: its start, then this run."""
        return self._aggregator.window_start(now) << _RUN_BITS | self._run_id

    def _take_over(self, drainer: FlowDrainer, store: SqliteWriter) -> list[CarriedFlow]:
        """With pinned maps an earlier sensor used: finish its interrupted move, let go of
        what the store committed, and return what it drained but never committed."""
        if not drainer.carrying:
            return []
        committed = store.committed_batch()
        # After the newest batch the kernel or the store knows of (a fresh pinned set after
        # a reboot or an upgrade starts from 0): a batch number is never used twice.
        previous = max(drainer.control.value.carry_batch, committed)
        self._run_id = (previous + 1) & ((1 << _RUN_BITS) - 1)
        moved = drainer.finish_interrupted_move()
        carried = [c for c in drainer.carried() if c.batch > committed]
        forgotten = drainer.forget(committed)
        if moved or carried or forgotten:
            log.info("pinned maps: finished a move of %d flows; %d flows drained but not "
                     "committed recovered, %d already committed let go", moved, len(carried),
                     forgotten)
        return carried

    def _write_carried(self, carried: list[CarriedFlow], writer: WindowWriter) -> None:
        """Each uncommitted window of the run before, as it would have been written."""
        batches: dict[int, list[DrainedFlow]] = {}
        for item in carried:
            batches.setdefault(item.batch, []).append(item.flow)
        now = self._clock()
        for batch, flows in sorted(batches.items()):
            window = Window(batch >> _RUN_BITS)
            for group, sent, recv in self._resolve(flows):
                window.add(group, sent, recv, now)
            writer.submit(WindowBatch(window=window, carry_batch=batch))

    def _report_unclean_stop(self, store: SqliteWriter, recovered_bytes: int) -> None:
        """The previous run ended without stopping (kill -9, the OOM killer, a crash, power
        lost): say so, with the span whose traffic may be missing, from its last write to
        this start (the window it was counting then was never written). With its programs
        still attached through their pins, the kernel counted on and what it had drained
        was recovered from `carry`: then the span is empty."""
        previous = store.unclean_stop()
        if previous is None:
            return
        started, last_written = previous
        now = self._clock()
        assert self._net is not None
        if self._counting_continued():
            message = (f"the previous sensor run (started {_iso(started)}) ended without "
                       f"stopping; its pinned programs kept counting and {recovered_bytes} "
                       "bytes it had drained but not stored were recovered: no traffic is "
                       "missing")
            missing_from = missing_to = now
        else:
            message = (f"the previous sensor run (started {_iso(started)}) ended without "
                       f"stopping; traffic from {_iso(last_written)} to {_iso(now)} may be "
                       "missing")
            missing_from, missing_to = last_written, now
        log.warning("%s", message)
        self._record_event(Event.of(now, EventKind.SENSOR_ERROR, component="sensor",
                                    state="unclean_stop", message=message, required=False,
                                    missing_from=missing_from, missing_to=missing_to,
                                    recovered_bytes=recovered_bytes))

    def _counting_continued(self) -> bool:
        """Every byte hook attached now was found attached, pinned by the run before."""
        assert self._net is not None and self._net.hook_set is not None
        hooks_now = [p.name for p in self._net.hook_set.programs
                     if self._net.is_attached(p.name)]
        return bool(hooks_now) and set(hooks_now) <= set(self._net.kept_links) and \
            self._drainer is not None and self._drainer.carrying

    def _report_replaced(self, store: SqliteWriter) -> None:
        """Pinned programs of another version (an upgrade, a changed setting) were
        replaced: what their maps held since the last commit was not read."""
        assert self._net is not None
        if not self._net.replaced:
            return
        now = self._clock()
        since = store.last_written() or now
        message = (f"pinned programs of another version ({', '.join(self._net.replaced)}) "
                   f"were replaced; what they counted from {_iso(since)} to {_iso(now)} "
                   "was not read and may be missing")
        log.warning("%s", message)
        self._record_event(Event.of(now, EventKind.SENSOR_ERROR, component="sensor",
                                    state="pinned_replaced", message=message, required=False,
                                    missing_from=since, missing_to=now))

    def _poll_rings(self, stop: Stopper) -> None:
        if not self._rings:
            return
        while not stop.is_set():
            try:
                self._rings.wait(0.1)
                self._rings.consume()
            except OSError as exc:
                log.error("ring buffers: %s", exc)
                self._user_counters.add("ring_poll_errors")
                stop.wait(1.0)

    def _shutdown(self, drainer: FlowDrainer, writer: WindowWriter,
                  poller: threading.Thread) -> None:
        now = self._clock()
        keep = self.keep_pinned and drainer.carrying
        if keep:
            # The pinned programs go on counting; the next sensor takes what they count.
            flows = drainer.drain(self._carry_batch(now))
        else:
            # Detach the counting hooks first: then both epochs can be read completely. The
            # release hook stays until after that read (a socket closing meanwhile still
            # hands its counts over), and so does the iterator that does the reading.
            for obj in self._objects:
                obj.detach(keep=DETACH_LAST)
            flows = drainer.drain_all(self._carry_batch(now))
        poller.join(timeout=2)
        self._rings.consume()  # what arrived before detaching
        for event in self._scans.tick(now) + self._scans.flush():
            self._record_event(event)
        self._drain_once(flows, writer, now=now)
        self._record_event(Event.of(self._clock(), EventKind.SENSOR_STOPPED, pid=os.getpid()))
        final = self._aggregator.flush()
        if final is not None:
            writer.submit(self._batch(final))
        else:  # no traffic in this window, but the stop event must be written
            writer.submit(self._batch(Window(self._aggregator.window_start(now))))
        writer.stop()
        self._hashes.stop()
        if self._watch is not None:
            self._watch.stop()
        self._rings.close()
        for obj in self._objects:
            if keep and obj.pin_dir is not None:
                obj.release()
            else:
                obj.close()

    def _drain_once(self, flows: list[DrainedFlow], writer: WindowWriter,
                    now: float | None = None) -> None:
        now = self._clock() if now is None else now
        # Answers and execs that arrived before these bytes were counted come first.
        self._rings.consume()
        for event in self._scans.tick(now):
            log.warning("port scan from %s: %s", event.field_dict()["source"],
                        event.field_dict()["ports"])
            self._record_event(event)
        self._check_silence(now, flows)
        groups = self._resolve(flows)
        self._collect_health(self._aggregator.window_start(now))
        closed = self._aggregator.add(now, groups)
        if closed is not None and not writer.submit(self._batch(closed)):
            log.error("writer is behind: window %d dropped", closed.start)

    def _check_silence(self, now: float, flows: list[DrainedFlow]) -> None:
        try:
            totals = read_interface_totals(self._procfs.root)
        except OSError:
            return
        attributed = (sum(f.sent_bytes for f in flows), sum(f.recv_bytes for f in flows))
        for silence in self._silent_zero.observe(now, totals, attributed):
            log.error("silent zero: %s", silence)
            self._record_event(Event.of(
                now, EventKind.SENSOR_ERROR, component="silent-zero", state="silent",
                direction=silence.direction, interface_bytes=silence.interface_bytes,
                required=True, message=(
                    f"the interfaces moved {silence.interface_bytes} bytes in "
                    f"{silence.period_s:g} s but no {silence.direction} was attributed: the "
                    f"{silence.direction} hook counts nothing (see `netwarden doctor`)")))

    def _batch(self, window: Window) -> WindowBatch:
        with self._events_lock:
            events, self._pending_events = tuple(self._pending_events), []
            health, self._pending_health = tuple(self._pending_health), []
            execs, self._pending_execs = tuple(self._pending_execs), []
        carrying = self._drainer is not None and self._drainer.carrying
        return WindowBatch(window=window, events=events, health=health, execs=execs,
                           carry_batch=window.start << _RUN_BITS | self._run_id
                           if carrying else 0)

    def _resolve(self, flows: list[DrainedFlow]) -> list[tuple[FlowGroup, int, int]]:
        programs: dict[tuple[int, int, int, int, int], ProgramRef] = {}
        groups = []
        for flow in flows:
            key = (flow.tgid, flow.exe_dev, flow.exe_ino, flow.uid, flow.cgroup_id)
            program = programs.get(key)
            if program is None:
                program = programs[key] = self._program(flow)
            groups.append((FlowGroup(
                program=program, family=flow.family,
                protocol=protocol_label(flow.family, flow.sock_type, flow.protocol),
                ip_protocol=flow.protocol, laddr=flow.local_addr, lport=flow.local_port,
                raddr=flow.remote_addr, rport=flow.remote_port, netns=flow.netns,
                domain=self._dns.name_for(flow.remote_addr) if flow.remote_addr else ""),
                flow.sent_bytes, flow.recv_bytes))
        return groups

    def _program(self, flow: DrainedFlow) -> ProgramRef:
        record = self._table.lookup(flow.tgid, flow.exe_dev, flow.exe_ino, flow.uid)
        return self._program_ref(record, flow.uid, self._containers.container(
            flow.tgid, flow.cgroup_id, record.cgroup))

    def _program_ref(self, record: ProcessRecord, uid: int, container: str) -> ProgramRef:
        parent, grandparent = self._table.ancestors(record)
        return ProgramRef(exe=record.exe, name=record.name, cmdline=record.cmdline, uid=uid,
                          parent=parent.exe if parent else None,
                          grandparent=grandparent.exe if grandparent else None,
                          script=record.script, container=container)

    def _collect_health(self, window_start: int) -> None:
        samples = []
        for counters in self._health:
            for name, delta in counters.deltas().items():
                samples.append(HealthSample(window_start, counters.source, name, delta))
        self._user_counters.set("ringbuf_size_mismatch", self._rings.size_mismatches)
        self._user_counters.set("dns_malformed", self._dns.malformed)
        self._user_counters.set("scan_sources_forgotten", self._scans.sources_forgotten)
        self._user_counters.set("scan_probes_allowed", self._scans.allowed_probes)
        self._user_counters.set("hash_prefetch_dropped", self._hashes.prefetch_dropped)
        if self._datagram_hook is not None and self._datagram_hook.managed:
            self._user_counters.set("datagram_hook_attaches", self._datagram_hook.attaches)
            self._user_counters.set("datagram_hook_attach_failures",
                                    self._datagram_hook.attach_failures)
        if self._watch is not None:
            self._user_counters.set("fanotify_overflows", self._watch.overflows)
            self._user_counters.set("fanotify_mark_failures", self._watch.mark_failures)
        if self._drainer is not None:
            self._user_counters.set("carry_full", self._drainer.carry_full)
        if self._writer is not None:
            stats = self._writer.take_stats()
            self._user_counters.add("windows_dropped", stats.windows_dropped)
            self._user_counters.add("store_write_failures", stats.write_failures)
            self._user_counters.add("csv_log_failures", stats.csv_failures)
        for obj in self._objects:
            for program in obj.attached_programs():
                try:
                    self._user_counters.set(f"recursion_misses:{program.name}",
                                            program.recursion_misses())
                except OSError:
                    pass
        for name, delta in self._user_counters.deltas().items():
            samples.append(HealthSample(window_start, "sensor", name, delta))
        losses = {f"{h.source}/{h.counter}": h.delta for h in samples
                  if h.counter in LOSS_COUNTERS or h.counter.startswith("recursion_misses:")}
        with self._events_lock:
            self._pending_health.extend(samples)
            if losses:
                self._pending_events.append(Event.of(
                    self._clock(), EventKind.SENSOR_ERROR, component="health", state="loss",
                    message="data lost: " + ", ".join(f"{k} +{v}" for k, v in
                                                     sorted(losses.items())),
                    required=False, counters=losses))

    @property
    def program_statuses(self) -> list[ProgramStatus]:
        return [s for obj in self._objects for s in obj.statuses]


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))
