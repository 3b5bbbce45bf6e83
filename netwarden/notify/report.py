"""What `netwarden notifier --status`, `netwarden deliveries` and `netwarden verdicts` print.

Pure functions from the state file's records to lines, so the output is tested as text.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from netwarden.store.notifier_state import Delivery, Verdict


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def status_lines(meta: Mapping[str, str], counts: Mapping[str, Mapping[str, int]],
                 failures: Mapping[str, Delivery | None], counters: Mapping[str, int],
                 verdicts: Mapping[str, int], now: float) -> list[str]:
    lines = []
    beat = meta.get("heartbeat")
    if beat is None:
        lines.append("notifier: has not run yet")
    else:
        age = now - float(beat)
        stopped = float(meta.get("stopped", 0)) >= float(beat)
        state = "stopped" if stopped else ("running" if age < 60 else "not heard from")
        lines.append(f"notifier: {state} (pid {meta.get('pid', '?')}, last heartbeat "
                     f"{_when(float(beat))}, {age:.0f} s ago)")
    lines.append(f"database: {meta.get('db', '?')}: {meta.get('store_status', '?')}")
    if "baseline" in meta:
        lines.append(f"baseline: {meta['baseline']}")
    if "report_next" in meta and meta.get("report_schedule") != "off":
        last = meta.get("report_last")
        lines.append(f"report: {meta.get('report_schedule', '?')}; next "
                     f"{_when(float(meta['report_next']))}"
                     + (f", last {_when(float(last))}" if last else ""))
    for channel in sorted(set(counts) | set(failures)):
        per = counts.get(channel, {})
        summary = ", ".join(f"{per.get(s, 0)} {s}" for s in
                            ("delivered", "pending", "failed", "dropped"))
        lines.append(f"channel {channel}: {summary}")
        failure = failures.get(channel)
        if failure is not None:
            lines.append(f"  last problem {_when(failure.updated)}: delivery {failure.id} "
                         f"{failure.status.value}: {failure.detail}")
    held = ", ".join(f"{k} {v}" for k, v in sorted(counters.items())) or "none"
    lines.append(f"counters: {held}")
    if verdicts:
        lines.append("virustotal: " + ", ".join(f"{n} {s}" for s, n in sorted(verdicts.items())))
        if "vt_last_error" in meta:
            at, _, text = meta["vt_last_error"].partition(" ")
            lines.append(f"  last error {_when(float(at))}: {text}")
    return lines


def delivery_record(d: Delivery) -> dict[str, object]:
    return {"id": d.id, "created": d.created, "updated": d.updated, "channel": d.channel,
            "kind": d.kind, "title": d.title, "status": d.status.value,
            "attempts": d.attempts, "detail": d.detail}


def delivery_lines(deliveries: Iterable[Delivery]) -> list[str]:
    return [f"{_when(d.updated)}  {d.channel:<8} {d.status.value:<9} x{d.attempts}  "
            f"{d.kind}: {d.title}  [{d.detail}]" for d in deliveries]


def verdict_record(v: Verdict) -> dict[str, object]:
    return {"sha256": v.sha256, "path": v.path, "name": v.name, "status": v.status.value,
            "malicious": v.malicious, "suspicious": v.suspicious, "undetected": v.undetected,
            "harmless": v.harmless, "total": v.total, "updated": v.updated,
            "detail": v.detail}


def verdict_lines(verdicts: Iterable[Verdict]) -> list[str]:
    return [f"{_when(v.updated)}  {v.status.value:<9} {v.malicious}/{v.total}  "
            f"{v.path or v.name}  {v.sha256}" + (f"  [{v.detail}]" if v.detail else "")
            for v in verdicts]
