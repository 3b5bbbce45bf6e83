"""Pure shaping of devices and presence windows for people: the CLI, the TUI and Dash.

It lives with the viewers' other shaping (netwarden.view), not in the producer's package:
the viewers may not import netwarden.discovery.

TUI and CLI: ``rows + width -> lines``. Dash: records for a DataTable and timeline segments
whose keys are the columns ``plotly.express.timeline`` takes (Task, Start, Finish). Nothing
here reads the store or draws.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from netwarden.model.discovery import Device
from netwarden.store.device_queries import DeviceRow, PresenceRow


@dataclass(frozen=True)
class TableRow:
    mac: str
    ip: str
    vendor: str
    name: str
    device_type: str
    ports: str
    last_seen: float
    flags: str       # R randomized MAC, K known, T trusted, * present now


def row_from_store(row: DeviceRow) -> TableRow:
    names = [n["name"] for n in row.names]
    name = row.known_name or (names[0] if names else "")
    flags = ("R" if row.randomized else "") + ("K" if row.known_name else "") + \
        ("T" if row.trusted else "") + ("*" if row.present else "")
    return TableRow(row.mac, row.ip, row.vendor, name, row.device_type,
                    _ports(row.open_ports), row.last_seen, flags)


def row_from_scan(device: Device) -> TableRow:
    return TableRow(device.mac, device.ip, device.vendor, device.name,
                    device.device_type.kind, _ports(device.open_ports), device.last_seen,
                    "R" if device.randomized else "")


def _ports(ports: Sequence[int] | None) -> str:
    return "-" if ports is None else ",".join(str(p) for p in ports) or "none"


COLUMNS = (("MAC", 17), ("IP", 15), ("VENDOR", 22), ("NAME", 20), ("TYPE", 18),
           ("PORTS", 16), ("SEEN", 8), ("FLAGS", 5))


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"


def device_table_lines(rows: Sequence[TableRow], width: int,
                       now: float | None = None) -> list[str]:
    """A fixed-width table: header plus one line per device, each at most ``width`` long."""
    now = time.time() if now is None else now
    header = " ".join(name.ljust(w) for name, w in COLUMNS)
    lines = [header[:width].rstrip()]
    for row in rows:
        cells = (row.mac, row.ip, row.vendor, row.name, row.device_type, row.ports,
                 _age(now - row.last_seen), row.flags)
        line = " ".join(_fit(cell, w).ljust(w)
                        for cell, (_n, w) in zip(cells, COLUMNS, strict=True))
        lines.append(line[:width].rstrip())
    return lines


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def presence_timeline_lines(windows: Sequence[PresenceRow], labels: Mapping[str, str],
                            start: float, end: float, width: int) -> list[str]:
    """One line per device: its label, then a bar over [start, end] ('█' here, '·' not)."""
    if end <= start:
        raise ValueError("the timeline needs end > start")
    label_width = min(24, max(8, width // 4))
    cells = max(1, width - label_width - 1)
    step = (end - start) / cells
    by_mac: dict[str, list[PresenceRow]] = {}
    for window in windows:
        by_mac.setdefault(device_key(window), []).append(window)
    lines = []
    for mac in sorted(by_mac, key=lambda m: (labels.get(m, m), m)):
        bar = []
        for i in range(cells):
            lo, hi = start + i * step, start + (i + 1) * step
            here = any(w.start < hi and (w.end if w.end is not None else w.last_seen) >= lo
                       for w in by_mac[mac])
            bar.append("█" if here else "·")
        label = _fit(labels.get(mac) or mac, label_width).ljust(label_width)
        lines.append(f"{label} {''.join(bar)}")
    return lines


def device_key(row: DeviceRow | PresenceRow) -> str:
    """What tells devices apart: the MAC locally; host and MAC on a fleet's server (two
    hosts on one LAN each see the same device)."""
    return f"{row.host}/{row.mac}" if row.host else row.mac


def device_labels(rows: Sequence[DeviceRow]) -> dict[str, str]:
    """What a person calls each device (its known name, a discovered name, its vendor or MAC,
    and on a fleet's server the host that saw it), by :func:`device_key`; a label two
    devices would share gets the MAC added, so timelines keep them apart."""
    labels = {device_key(r): (r.known_name or (r.names[0]["name"] if r.names else "")
                              or r.vendor or r.mac) + (f" @ {r.host}" if r.host else "")
              for r in rows}
    counts = Counter(labels.values())
    macs = {device_key(r): r.mac for r in rows}
    return {key: label if counts[label] == 1 or macs[key] in label else
            f"{label} ({macs[key]})" for key, label in labels.items()}


def device_table_records(rows: Sequence[DeviceRow]) -> list[dict[str, object]]:
    """Rows for a Dash DataTable: flat, JSON-friendly values."""
    return [{
        **({"host": r.host} if r.host else {}), "mac": r.mac, "ip": r.ip,
        "ips": ", ".join(r.ips), "vendor": r.vendor,
        "name": r.known_name or ", ".join(n["name"] for n in r.names),
        "names": ", ".join(f"{n['name']} ({n['method']})" for n in r.names),
        "services": ", ".join(sorted({str(s["service"]) for s in r.services})),
        "open_ports": _ports(r.open_ports), "device_type": r.device_type,
        "type_reasons": "; ".join(r.type_reasons), "randomized": r.randomized,
        "trusted": r.trusted, "present": r.present, "last_seen": r.last_seen,
    } for r in rows]


def presence_segments(windows: Sequence[PresenceRow], labels: Mapping[str, str],
                      now: float) -> list[dict[str, object]]:
    """Timeline bars for ``px.timeline(DataFrame(segments), x_start="Start",
    x_end="Finish", y="Task")``: epoch seconds, an open window drawn up to ``now``."""
    return [{"Task": labels.get(device_key(w)) or w.mac, "mac": w.mac, "Start": w.start,
             "Finish": w.end if w.end is not None else max(now, w.last_seen),
             "open": w.end is None} for w in windows]
