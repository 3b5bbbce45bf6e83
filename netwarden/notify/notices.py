"""What the notifier says about an event: pure functions from event rows to notices.

A notice is what every channel delivers: a title and body for people, the event's fields for
machines. Kinds without a notice (sensor_started, sensor_stopped) and kinds this version does
not know return None: an unknown kind from a newer sensor must never stop the notifier.
Nor has an event its writer marked with the baseline's mode (field ``baseline``): a new
program or device seen while the baseline learned went into it silently, and one seen after
is told by its ``drift`` event (docs/baseline.md).
"""

from __future__ import annotations

import json
import os
import time as clock
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from netwarden.model import EventKind
from netwarden.model.kinds import (
    EVENT_KINDS, REPORT, REPORT_KIND, VIRUSTOTAL, VIRUSTOTAL_KIND, Urgency, count_label, event_kind,
)
from netwarden.view import report as shape
from netwarden.view.units import format_bytes

SUMMARY_KIND = "summary"


@dataclass(frozen=True)
class Notice:
    """One message for every channel.

    ``key`` groups notices for the cooldown (one program and kind, one trouble component);
    ``trouble`` selects the sensor-trouble cooldown; ``program``/``name`` are matched by mutes.
    """

    kind: str
    title: str
    body: str
    urgency: Urgency
    time: float
    key: str
    program: str = ""
    name: str = ""
    trouble: bool = False
    event_ids: tuple[int, ...] = ()
    fields: tuple[tuple[str, object], ...] = field(default=())

    def field_dict(self) -> dict[str, object]:
        return dict(self.fields)

    def as_record(self) -> dict[str, object]:
        """JSON-able form: what webhooks and MQTT receive, and what the outbox stores."""
        return {"kind": self.kind, "title": self.title, "body": self.body,
                "urgency": self.urgency.name.lower(), "time": self.time, "key": self.key,
                "program": self.program, "name": self.name, "trouble": self.trouble,
                "event_ids": list(self.event_ids), "fields": self.field_dict()}

    def to_json(self) -> str:
        return json.dumps(self.as_record(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> "Notice":
        fields = record.get("fields") or {}
        ids = record.get("event_ids") or ()
        assert isinstance(fields, dict) and isinstance(ids, (list, tuple))
        return cls(kind=str(record["kind"]), title=str(record["title"]),
                   body=str(record["body"]), urgency=Urgency[str(record["urgency"]).upper()],
                   time=float(record["time"]), key=str(record["key"]),  # type: ignore[arg-type]
                   program=str(record.get("program", "")), name=str(record.get("name", "")),
                   trouble=bool(record.get("trouble", False)),
                   event_ids=tuple(int(i) for i in ids),
                   fields=tuple(sorted(fields.items())))

    @classmethod
    def from_json(cls, text: str) -> "Notice":
        return cls.from_record(json.loads(text))


def _text(fields: Mapping[str, object], name: str, default: str = "") -> str:
    value = fields.get(name)
    return default if value is None else str(value)


def _short(sha256: str) -> str:
    return sha256[:12] + "…" if len(sha256) > 12 else (sha256 or "unreadable")


def _program_label(fields: Mapping[str, object]) -> tuple[str, str]:
    path = _text(fields, "path")
    name = _text(fields, "name") or os.path.basename(path) or "unknown program"
    return path, name


#: What a kind's renderer says beyond its table entry: (title or "" for the table's, body,
#: urgency or None for the table's, the cooldown key's subject, program path, program name).
Rendered = tuple[str, str, Urgency | None, str, str, str]


def _new_executable(fields: Mapping[str, object]) -> Rendered:
    path, name = _program_label(fields)
    body = f"{name} ({path})" if path else name
    if fields.get("uid") is not None:
        body += f"\nuser {_text(fields, 'uid')}, sha256 {_short(_text(fields, 'sha256'))}"
    return "", body, None, path or name, path, name


def _exe_modified(fields: Mapping[str, object]) -> Rendered:
    path, name = _program_label(fields)
    new = _text(fields, "new_sha256")
    body = (f"{name} ({path})\nsha256 {_short(_text(fields, 'old_sha256'))} → "
            f"{_short(new) if new else 'unknown'}")
    if _text(fields, "detail"):
        body += f"\n{_text(fields, 'detail')}"
    return "", body, None, path or name, path, name


def _device_label(fields: Mapping[str, object]) -> str:
    mac, ip = _text(fields, "mac", "?"), _text(fields, "ip")
    who = _text(fields, "name") or _text(fields, "vendor") or "unknown device"
    vendor = _text(fields, "vendor")
    details = ", ".join(x for x in (mac, vendor if vendor != who else "") if x)
    return f"{who} {ip} ({details})".replace("  ", " ")


def _new_device(fields: Mapping[str, object]) -> Rendered:
    body = _device_label(fields)
    if fields.get("interface"):
        body += f" on {_text(fields, 'interface')}"
    if fields.get("randomized"):
        body += "\n(randomized MAC address: a phone or laptop hiding its identity)"
    return "", body, None, _text(fields, "mac"), "", ""


def _ports(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value) if value else ""


def _device_changed(fields: Mapping[str, object]) -> Rendered:
    body = _device_label(fields)
    added, removed = _ports(fields.get("added_ports")), _ports(fields.get("removed_ports"))
    if added:
        body += f"\nnewly open ports: {added}"
    if removed:
        body += f"\nclosed ports: {removed}"
    return "", body, None, _text(fields, "mac"), "", ""


def _counters(value: object) -> str:
    if not isinstance(value, dict) or not value:
        return ""
    return ", ".join(f"{name} +{delta}" for name, delta in sorted(value.items()))


def _sensor_error(fields: Mapping[str, object]) -> Rendered:
    component = _text(fields, "component", "sensor")
    message, state = _text(fields, "message"), _text(fields, "state")
    if component == "health":
        title = "netwarden lost data"
        body = message or "the sensor dropped events"
        counters = _counters(fields.get("counters"))
        if counters:
            body += f"\n{counters}"
    elif component == "silent-zero":
        title = "netwarden sees traffic it cannot attribute"
        body = message or "traffic on the interfaces, but no program was credited with it"
    else:
        title = ""
        body = f"{component}: {state}".rstrip(": ") + (f"\n{message}" if message else "")
    urgency = Urgency.CRITICAL if fields.get("required") else None
    return title, body, urgency, component, "", ""


def _fleet_host(fields: Mapping[str, object]) -> Rendered:
    host = _text(fields, "host", "?")
    body = f"{host}: no heartbeat for {_text(fields, 'silent_s', '?')} s" \
        if "silent_s" in fields else f"{host} is shipping again"
    behind = _text(fields, "behind_rows")
    if behind and behind != "0":
        body += f"\n{behind} rows were waiting to ship at its last heartbeat"
    return "", body, None, host, "", ""


def _watch_target(fields: Mapping[str, object]) -> Rendered:
    """target_down / target_up: which target (or group), its probe, since when, why."""
    target, group = _text(fields, "target", "?"), _text(fields, "group")
    what = f"{group} (all of: {_ports(fields.get('members'))})" if fields.get("members") \
        else f"{target} ({_text(fields, 'probe')})"
    if "downtime_s" in fields:
        body = f"{what} answers again after {_text(fields, 'downtime_s')} s down"
    else:
        body = f"{what} down since {_clock(fields.get('since'))}: {_text(fields, 'reason')}"
    return "", body, None, target, "", ""


def _clock(value: object) -> str:
    if not isinstance(value, (int, float)):
        return "?"
    return clock.strftime("%Y-%m-%d %H:%M:%S", clock.localtime(value))
#: What a drift notice's title says, by drift kind (the event's ``drift`` field).
_DRIFT_TITLES = {
    "new_program": "New program outside the baseline",
    "new_destination": "Program talks to a new destination",
    "new_listen_port": "New listening port outside the baseline",
    "new_device": "New LAN device outside the baseline",
    "new_device_port": "New open port on a LAN device",
}


def _drift(fields: Mapping[str, object]) -> Rendered:
    drift, key = _text(fields, "drift"), _text(fields, "key")
    path, name = _program_label(fields) if fields.get("path") else ("", "")
    if drift == "new_destination":
        body = f"{name} ({path}) → {_text(fields, 'destination')}"
    elif drift == "new_listen_port":
        who = f"{name} ({path})" if path else "an unknown program"
        body = f"{_text(fields, 'protocol')} port {_text(fields, 'port')} listening: {who}"
    elif drift in ("new_device", "new_device_port"):
        body = _device_label(fields)
        if drift == "new_device_port":
            body += f"\nnewly open port: {_text(fields, 'port')}"
    else:
        body = f"{name} ({path})" if path else key
        if fields.get("sha256"):
            body += f"\nsha256 {_short(_text(fields, 'sha256'))}"
    body += f"\napprove: netwarden baseline approve {_text(fields, 'item', key)}"
    return _DRIFT_TITLES.get(drift, ""), body, None, f"{drift}:{key}", path, name


_PROBE_TEXT = {"syn": "half-open SYN", "connect": "full connect", "fin": "FIN", "null": "NULL",
               "xmas": "XMAS", "udp": "UDP", "other": "odd TCP segments"}


def _port_scan(fields: Mapping[str, object]) -> Rendered:
    source = _text(fields, "source", "?")
    probe = _text(fields, "probe")
    body = (f"{source} probed {_text(fields, 'ports', '?')} ports "
            f"({_PROBE_TEXT.get(probe, probe)}) in {_text(fields, 'duration_s', '?')} s")
    sample = _ports(fields.get("sample"))
    if sample:
        body += f"\nports {sample}"
    if _text(fields, "state") == "ongoing":
        body += "\nstill going on"
    return "", body, None, source, "", ""


#: The body of each notified kind (its title, urgency and the rest: model.kinds.EVENT_KINDS).
_RENDERERS: dict[EventKind, Callable[[Mapping[str, object]], Rendered]] = {
    EventKind.NEW_EXECUTABLE: _new_executable,
    EventKind.EXE_MODIFIED: _exe_modified,
    EventKind.NEW_DEVICE: _new_device,
    EventKind.DEVICE_CHANGED: _device_changed,
    EventKind.SENSOR_ERROR: _sensor_error,
    EventKind.HOST_SILENT: _fleet_host,
    EventKind.HOST_BACK: _fleet_host,
    EventKind.TARGET_DOWN: _watch_target,
    EventKind.TARGET_UP: _watch_target,
    EventKind.DRIFT: _drift,
    EventKind.PORT_SCAN: _port_scan,
}


def render_event(event_id: int, time: float, kind: str, fields: Mapping[str, object],
                 device_changes: bool = False) -> Notice | None:
    """The notice for one event row, or None for silent and unknown kinds."""
    known = event_kind(kind)
    if known is None or known not in _RENDERERS:
        return None
    info = EVENT_KINDS[known]
    if info.optional and not device_changes:
        return None
    if fields.get("baseline") in ("learning", "enforcing"):
        # Recorded (the viewers show it), not notified: learned, or told by a drift event.
        return None
    title, body, urgency, subject, path, name = _RENDERERS[known](fields)
    plain = {k: v for k, v in fields.items() if isinstance(v, (str, int, float, bool, list,
                                                                dict, type(None)))}
    return Notice(kind=kind, title=title or info.title, body=body,
                  urgency=info.urgency if urgency is None else urgency, time=time,
                  key=f"{kind}:{subject}", program=path, name=name, trouble=info.trouble,
                  event_ids=(event_id,), fields=tuple(sorted(plain.items())))


def render_verdict(sha256: str, path: str, name: str, malicious: int, total: int,
                   time: float) -> Notice:
    """A malicious VirusTotal verdict."""
    label = name or os.path.basename(path) or sha256[:12]
    body = (f"{label} ({path or 'path unknown'})\n{malicious} of {total} engines call it "
            f"malicious\nsha256 {sha256}")
    return Notice(kind=VIRUSTOTAL, title=VIRUSTOTAL_KIND.title, body=body,
                  urgency=VIRUSTOTAL_KIND.urgency, time=time, key=f"{VIRUSTOTAL}:{sha256}",
                  program=path, name=label,
                  fields=(("malicious", malicious), ("path", path), ("sha256", sha256),
                          ("total", total)))


def _report_counts(report: shape.Report) -> str:
    counts = [(EventKind.NEW_EXECUTABLE, len(report.new_programs)),
              (EventKind.EXE_MODIFIED, len(report.modified)),
              (EventKind.NEW_DEVICE, len(report.new_devices or ())),
              (EventKind.SENSOR_ERROR, sum(t.count for t in report.sensor_errors))]
    said = [count_label(kind.value, n) for kind, n in counts if n]
    return ", ".join(said) if said else "nothing new"


def render_report(report: shape.Report, markdown: str, time: float) -> Notice:
    """The scheduled report: a few lines for a desktop bubble or a phone, the whole report
    in Markdown (``fields["markdown"]``) for the channels that carry it."""
    lines = [line for line in shape.summary_lines(report, None)
             if not line.startswith("Source:")]
    if report.programs:
        top = report.programs[0]
        lines.append(f"Top program: {top.label} ({format_bytes(top.total)})")
    lines.append(_report_counts(report))
    return Notice(kind=REPORT, title=f"{REPORT_KIND.title}: {report.period}",
                  body="\n".join(lines), urgency=REPORT_KIND.urgency, time=time,
                  key=f"{REPORT}:{report.period}",
                  fields=(("markdown", markdown), ("period", report.period),
                          ("recv", report.recv), ("sent", report.sent),
                          ("since", report.since), ("until", report.until)))
