"""The metrics netwarden exposes, named and described in one place (docs/metrics.md lists
them for people): counts in, exposition families out. Pure.

Names follow Prometheus' conventions: a `netwarden_` prefix, the unit in the name (`_bytes`,
`_seconds`, `_rows`), `_total` on counters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from netwarden.metrics.counting import OTHER, Counts
from netwarden.metrics.exposition import Family, family
from netwarden.store.watch_queries import TargetStatus


@dataclass(frozen=True)
class HealthMetric:
    """Where one of the sensor's health counters goes: a metric and the labels it adds."""

    name: str
    help: str
    labels: tuple[tuple[str, str], ...] = ()
    detail_label: str = ""     # a counter written "name:DETAIL" puts DETAIL in this label


_FLOW_DROPS = ("netwarden_sensor_flow_map_drops_total",
               "Flow updates the kernel could not record, since the exporter started "
               "(reason full: the flow map was full; insert_failed: another failed insert)")
_RING_DROPS = ("netwarden_sensor_ring_buffer_drops_total",
               "Records lost because a ring buffer was full, since the exporter started "
               "(ring proc: exec/fork/exit; dns: DNS answers; exec: every-exec records)")

#: The sensor's health counters (by name, before any ":DETAIL") given metrics of their own;
#: every other one goes to netwarden_health_total by source and counter.
HEALTH_METRICS: dict[str, HealthMetric] = {
    "flow_map_full": HealthMetric(*_FLOW_DROPS, (("reason", "full"),)),
    "flow_insert_failed": HealthMetric(*_FLOW_DROPS, (("reason", "insert_failed"),)),
    "proc_events_lost": HealthMetric(*_RING_DROPS, (("ring", "proc"),)),
    "dns_events_lost": HealthMetric(*_RING_DROPS, (("ring", "dns"),)),
    "execs_dropped": HealthMetric(*_RING_DROPS, (("ring", "exec"),)),
    "hook_failed": HealthMetric(
        "netwarden_sensor_hook_failures_total",
        "BPF programs (hooks) that failed to load or attach, since the exporter started",
        detail_label="hook"),
    "recursion_misses": HealthMetric(
        "netwarden_sensor_bpf_recursion_misses_total",
        "Runs of a BPF program the kernel skipped (recursion), since the exporter started",
        detail_label="program"),
    "bytes_unattributed": HealthMetric(
        "netwarden_sensor_unattributed_bytes_total",
        "Bytes the kernel side counted but could not attribute to a process"),
}
_HEALTH_OTHER = ("netwarden_health_total",
                 "Every other health counter of the sensor and discovery (as `netwarden health` "
                 "prints them), summed since the exporter started")


def build(counts: Counts) -> list[Family]:
    """Every family, in a fixed order."""
    return [*_store_families(counts), *_traffic(counts), *_health(counts), *_events(counts),
            *_devices(counts), *_watch(counts)]


def _store_families(counts: Counts) -> list[Family]:
    return [
        family("netwarden_store_up", "gauge",
               "1 if the last scrape read the store, 0 if it could not (the counters then "
               "keep their last values)", 1 if counts.store_up else 0),
        family("netwarden_exporter_start_time_seconds", "gauge",
               "When this process started counting (epoch seconds): every _total counts "
               "what the store recorded since", counts.started),
    ]


def _traffic(counts: Counts) -> list[Family]:
    shown = [(exe, counts.own[exe]) for exe in counts.labelled if exe in counts.own]
    shown.append((OTHER, counts.other))
    return [
        family("netwarden_executable_sent_bytes_total", "counter",
               "Bytes sent per executable (path) since the exporter started; the top N "
               "executables by bytes get their own series, the rest exe=\"other\"",
               [({"exe": exe}, d.sent) for exe, d in shown]),
        family("netwarden_executable_received_bytes_total", "counter",
               "Bytes received per executable (path) since the exporter started; the top N "
               "executables by bytes get their own series, the rest exe=\"other\"",
               [({"exe": exe}, d.recv) for exe, d in shown]),
    ]


def _health(counts: Counts) -> list[Family]:
    grouped: dict[str, tuple[str, list[tuple[dict[str, str], float]]]] = {}
    for (source, counter), value in sorted(counts.health.items()):
        name, _, detail = counter.partition(":")
        metric = HEALTH_METRICS.get(name)
        if metric is None:
            entry = grouped.setdefault(_HEALTH_OTHER[0], (_HEALTH_OTHER[1], []))
            entry[1].append(({"source": source, "counter": counter}, value))
            continue
        labels = {"source": source, **dict(metric.labels)}
        if metric.detail_label:
            labels[metric.detail_label] = detail
        grouped.setdefault(metric.name, (metric.help, []))[1].append((labels, value))
    families = [family(name, "counter", help_text, _merged(samples))
                for name, (help_text, samples) in grouped.items()]
    families += [
        family("netwarden_sensor_silent_zero_alarms_total", "counter",
               "Silent-zero alarms (the interfaces moved bytes in a direction that was "
               "attributed none) since the exporter started", [
                   ({"direction": d}, n) for d, n in counts.silent_zero.items()]),
    ]
    levels = counts.sink_levels
    families += [
        family("netwarden_sink_behind_rows", "gauge",
               "Rows the remote sink has not shipped yet, as the sensor last measured it",
               levels.get("behind_rows", 0)),
        family("netwarden_sink_behind_seconds", "gauge",
               "Age of the oldest row the remote sink has not shipped, as the sensor last "
               "measured it (0 when nothing waits)", levels.get("behind_s", 0)),
    ]
    return sorted(families, key=lambda f: f.name)


def _merged(samples: Iterable[tuple[dict[str, str], float]]
            ) -> list[tuple[dict[str, str], float]]:
    """Samples with the same labels added up (two counters may map to one series)."""
    merged: dict[tuple[tuple[str, str], ...], float] = {}
    for labels, value in samples:
        key = tuple(sorted(labels.items()))
        merged[key] = merged.get(key, 0) + value
    return [(dict(key), value) for key, value in merged.items()]


def _events(counts: Counts) -> list[Family]:
    return [
        family("netwarden_events_total", "counter",
               "Events recorded since the exporter started, by kind (new_executable, "
               "exe_modified, sensor_error, new_device, ...)",
               [({"kind": kind}, n) for kind, n in counts.events.items()]),
        family("netwarden_sensor_errors_total", "counter",
               "sensor_error events since the exporter started, by the part that failed",
               [({"component": c}, n) for c, n in counts.sensor_errors.items()]),
        family("netwarden_port_scans_total", "counter",
               "Inbound port scans the sensor detected since the exporter started (a long "
               "scan counts once), by the probe kind most of its ports saw",
               [({"probe": p}, n) for p, n in counts.scans.items()]),
    ]


def _devices(counts: Counts) -> list[Family]:
    if counts.devices is None:      # a store without LAN discovery's tables
        return []
    return [
        family("netwarden_devices_present", "gauge",
               "LAN devices here now (their latest presence window is open)",
               counts.devices.present),
        family("netwarden_devices_recorded", "gauge",
               "LAN devices discovery has recorded in the store", counts.devices.recorded),
    ]


def _watch(counts: Counts) -> list[Family]:
    """The connectivity watch's targets and groups (docs/watch.md); a target whose state is
    not known yet (too few probes, outside its schedule) has no up series."""
    if counts.watch is None:        # a store without the watch's tables
        return []
    rows = counts.watch

    def labels(row: TargetStatus, **more: str) -> dict[str, str]:
        return {"target": row.name, "probe": row.probe, "group": row.group, **more}
    return [
        family("netwarden_watch_target_up", "gauge",
               "1 while a watched target (or group) is up, 0 while it is down",
               [(labels(r), 1 if r.state == "up" else 0) for r in rows if r.state != "unknown"]),
        family("netwarden_watch_target_latency_seconds", "gauge",
               "A target's probe latency: stat=last (its latest answered probe; absent when "
               "that failed) and stat=avg_1h (answered probes of the last hour)",
               [(labels(r, stat=stat), ms / 1000) for r in rows if not r.is_group
                for stat, ms in (("last", r.last_latency_ms), ("avg_1h", r.avg_latency_ms))
                if ms is not None]),
        family("netwarden_watch_target_uptime_ratio", "gauge",
               "Share of the watched time a target (or group) was up, over the last "
               "span=day or span=week",
               [(labels(r, span=span), value) for r in rows
                for span, value in (("day", r.uptime_day), ("week", r.uptime_week))
                if value is not None]),
    ]
