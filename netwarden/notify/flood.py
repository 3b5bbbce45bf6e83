"""Flood control: what is shown now, what waits, what is folded into a summary.

Three rules, applied in order to each notice that was not muted (picosnitch users asked for
all three, its issue #14):

1. Cooldown: a notice whose key (one program and kind, or one kind of sensor trouble) was
   shown less than ``cooldown_s`` ago (``trouble_cooldown_s`` for sensor trouble) is not shown;
   it is counted, and the next notice for that key says how many were held back.
2. Rate limit: at most ``max_per_window`` notices in any ``window_s`` (a sliding window). The
   last slot of a window is kept for a summary, so a burst of 50 new programs shows
   ``max_per_window - 1`` of them and one summary of the rest, at once.
3. Folded notices wait for the next free slot; ``due()`` emits them as one summary (or as
   themselves when only one waits).

The class is pure: the caller passes ``now``; ``snapshot()``/``from_snapshot()`` let the
notifier persist it with its cursor so a restart neither repeats nor forgets a summary.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, replace

from netwarden.model.kinds import count_label
from netwarden.notify.notices import SUMMARY_KIND, Notice

#: A summary names at most this many programs or devices, and keeps this many event ids.
_SUMMARY_NAMES = 5
_SUMMARY_IDS = 200


@dataclass(frozen=True)
class FloodPolicy:
    cooldown_s: float = 300.0
    trouble_cooldown_s: float = 900.0
    max_per_window: int = 5
    window_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_per_window < 2:
            raise ValueError("max_per_window must be at least 2 (one slot is for summaries)")


def summarize(folded: list[Notice], now: float) -> Notice:
    """One notice standing for many: counts per kind, the first few names, the worst urgency."""
    by_kind: dict[str, list[Notice]] = collections.defaultdict(list)
    for notice in folded:
        by_kind[notice.kind].append(notice)
    # Worst first: a malicious verdict or sensor trouble leads the summary.
    order = sorted(by_kind, key=lambda k: (-max(n.urgency for n in by_kind[k]), k))
    lines = []
    for kind in order:
        names = []
        for notice in by_kind[kind]:
            label = notice.name or notice.program or notice.body.split("\n")[0]
            if label not in names:
                names.append(label)
        shown = ", ".join(names[:_SUMMARY_NAMES]) + (", …" if len(names) > _SUMMARY_NAMES
                                                     else "")
        lines.append(f"{count_label(kind, len(by_kind[kind]))}: {shown}")
    ids = [i for notice in folded for i in notice.event_ids]
    counts = {kind: len(items) for kind, items in by_kind.items()}
    return Notice(kind=SUMMARY_KIND, title=f"netwarden: {len(folded)} more notifications",
                  body="\n".join(lines), urgency=max(n.urgency for n in folded),
                  time=now, key=SUMMARY_KIND, event_ids=tuple(ids[:_SUMMARY_IDS]),
                  fields=(("counts", counts), ("folded", len(folded)),
                          ("event_count", len(ids))))


class FloodControl:
    def __init__(self, policy: FloodPolicy) -> None:
        self.policy = policy
        self._sent: collections.deque[float] = collections.deque()
        self._last_shown: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._pending: list[Notice] = []
        self.cooled = 0      # since this object was made: the caller counts deltas
        self.folded = 0

    # -- the rules --

    def offer(self, notice: Notice, now: float) -> list[Notice]:
        """The notices to deliver now because ``notice`` arrived (none or one)."""
        self._forget(now)
        cooldown = self.policy.trouble_cooldown_s if notice.trouble else self.policy.cooldown_s
        last = self._last_shown.get(notice.key)
        if last is not None and now - last < cooldown:
            self._held[notice.key] = self._held.get(notice.key, 0) + 1
            self.cooled += 1
            return []
        self._last_shown[notice.key] = now
        held = self._held.pop(notice.key, 0)
        if held:
            notice = _with_held(notice, held)
        if len(self._sent) < self.policy.max_per_window - 1:
            self._sent.append(now)
            return [notice]
        self._pending.append(notice)
        self.folded += 1
        return []

    def due(self, now: float) -> list[Notice]:
        """The waiting notices as one summary, if a slot is free (call after each batch)."""
        self._forget(now)
        if not self._pending or len(self._sent) >= self.policy.max_per_window:
            return []
        self._sent.append(now)
        pending, self._pending = self._pending, []
        return [pending[0] if len(pending) == 1 else summarize(pending, now)]

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _forget(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.policy.window_s:
            self._sent.popleft()
        # Keys are kept for two cooldowns, so the next notice after one can still say how many
        # were held back; after that the count is old news and is forgotten with the key.
        keep = 2 * max(self.policy.cooldown_s, self.policy.trouble_cooldown_s)
        for key in [k for k, t in self._last_shown.items() if now - t >= keep]:
            del self._last_shown[key]
            self._held.pop(key, None)

    # -- persistence --

    def snapshot(self) -> dict[str, object]:
        return {"sent": list(self._sent), "last_shown": dict(self._last_shown),
                "held": dict(self._held), "pending": [n.as_record() for n in self._pending]}

    @classmethod
    def from_snapshot(cls, policy: FloodPolicy, data: dict[str, object] | None) -> "FloodControl":
        flood = cls(policy)
        if not data:
            return flood
        flood._sent.extend(float(t) for t in data.get("sent", ()))  # type: ignore[union-attr]
        flood._last_shown.update(data.get("last_shown", {}))  # type: ignore[arg-type]
        flood._held.update(data.get("held", {}))  # type: ignore[arg-type]
        pending = data.get("pending", ())
        flood._pending = [Notice.from_record(r) for r in pending]  # type: ignore[union-attr]
        return flood


def _with_held(notice: Notice, held: int) -> Notice:
    more = "1 more like it was" if held == 1 else f"{held} more like it were"
    return replace(notice, body=f"{notice.body}\n({more} held back since the last one)")
