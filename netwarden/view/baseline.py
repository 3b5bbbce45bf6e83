"""The baseline as both viewers show it: a one-line badge and the rows of the drift list."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo

from netwarden.model.baseline import BaselineSummary, Mode
from netwarden.store.event_queries import EventRow
from netwarden.view.labels import format_time


def baseline_badge(summary: BaselineSummary | None, tz: tzinfo | None = None) -> str:
    """'baseline learning until 12-09 22:24', 'baseline enforcing, 3 drift'; '' when off."""
    if summary is None or summary.mode.mode is Mode.OFF:
        return ""
    if summary.mode.mode is Mode.LEARNING:
        until = summary.mode.learning_until or 0.0
        return f"baseline learning until {format_time(until, tz)}"
    return "baseline enforcing" + (f", {summary.drift} drift" if summary.drift else "")


def _what(fields: dict[str, object]) -> str:
    """The thing that drifted, in a few words."""
    drift = fields.get("drift")
    name = fields.get("name") or fields.get("path") or ""
    if drift == "new_destination":
        return f"{name} -> {fields.get('destination', '')}"
    if drift == "new_listen_port":
        return f"{fields.get('protocol', '')}/{fields.get('port', '')} {name}".strip()
    if drift in ("new_device", "new_device_port"):
        port = f" port {fields['port']}" if drift == "new_device_port" else ""
        return f"{fields.get('mac', '')} {fields.get('ip', '')}{port}"
    return str(fields.get("path") or fields.get("key") or "")


def drift_rows(events: Iterable[EventRow], tz: tzinfo | None = None) -> list[list[str]]:
    """[time, drift kind, what, item id] per drift event, as given (newest first)."""
    return [[format_time(e.time, tz), str(e.fields.get("drift", "")), _what(e.fields),
             str(e.fields.get("item", ""))] for e in events if e.kind == "drift"]
