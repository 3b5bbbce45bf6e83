"""VirusTotal lookups of new executables' hashes (optional, off by default; never uploads).

``GET {base_url}/api/v3/files/{sha256}`` with the user's key in ``x-apikey``. A 200 carries
``data.attributes.last_analysis_stats`` ({malicious, suspicious, undetected, harmless, ...});
a 404 (``NotFoundError``) means VirusTotal has never seen the file. Lookups are paced by
``next_lookup_at`` (pure): at most ``requests_per_minute`` in any 60 s and ``requests_per_day``
per UTC day, counted from the state file so restarts do not reset them. A 429 waits a minute;
a rejected key (401/403) pauses lookups for an hour; the error is
recorded (``netwarden notifier --status``). Files are never uploaded:
uploading is not implemented.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from netwarden.notify.http_channels import USER_AGENT
from netwarden.stopper import Stopper
from netwarden.store.notifier_state import NotifierState, VerdictStatus

log = logging.getLogger("netwarden.virustotal")

DAY_S = 86400.0


class VirusTotalError(Exception):
    """A lookup failed; ``retry_after_s``: when to try again (None: never, for this hash).

    Transient failures (rejected key, quota, server down) pause all lookups, not only this
    hash's: every request would fail the same way and still count against the quota.
    """

    def __init__(self, message: str, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class LookupResult:
    status: VerdictStatus
    stats: dict[str, int]
    detail: str


def next_lookup_at(now: float, recent: Sequence[float], per_minute: int, per_day: int) -> float:
    """The earliest time a lookup may start, given the start times of earlier ones.

    ``recent`` must hold at least the lookups since the start of the current UTC day and of
    the last 60 s. The day is UTC because that is when VirusTotal resets its daily quota.
    """
    day_start = now - now % DAY_S
    today = [t for t in recent if t >= day_start]
    if len(today) >= per_day:
        return day_start + DAY_S
    last_minute = sorted(t for t in recent if t > now - 60.0)
    if len(last_minute) >= per_minute:
        return last_minute[-per_minute] + 60.0
    return now


def classify(stats: dict[str, int], threshold: int) -> VerdictStatus:
    return VerdictStatus.MALICIOUS if stats.get("malicious", 0) >= threshold \
        else VerdictStatus.CLEAN


def lookup(base_url: str, api_key: str, sha256: str, timeout_s: float,
           threshold: int) -> LookupResult:
    """One v3 files lookup; raises VirusTotalError for anything but a verdict or a 404."""
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/api/v3/files/{sha256}",
        headers={"x-apikey": api_key, "Accept": "application/json", "User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            document = json.loads(response.read(4 << 20))
    except urllib.error.HTTPError as exc:
        code = _error_code(exc)
        if exc.code == 404:
            return LookupResult(VerdictStatus.UNKNOWN, {}, f"not known to VirusTotal ({code})")
        if exc.code in (401, 403):
            raise VirusTotalError(f"key rejected: HTTP {exc.code} {code}", 3600.0) from None
        if exc.code == 429:
            raise VirusTotalError(f"quota exceeded: HTTP 429 {code}", 60.0) from None
        if exc.code >= 500:
            raise VirusTotalError(f"server error: HTTP {exc.code} {code}", 300.0) from None
        raise VirusTotalError(f"refused: HTTP {exc.code} {code}", None) from None
    except (urllib.error.URLError, OSError) as exc:
        raise VirusTotalError(f"{base_url}: {getattr(exc, 'reason', exc)}", 300.0) from None
    except ValueError as exc:
        raise VirusTotalError(f"answer is not JSON: {exc}", 300.0) from None
    try:
        raw = document["data"]["attributes"]["last_analysis_stats"]
        stats = {str(k): int(v) for k, v in raw.items()}
    except (KeyError, TypeError, ValueError):
        raise VirusTotalError("answer lacks data.attributes.last_analysis_stats", 300.0) from None
    status = classify(stats, threshold)
    return LookupResult(status, stats, f"{stats.get('malicious', 0)} of {sum(stats.values())} "
                                       "engines say malicious")


def _error_code(exc: urllib.error.HTTPError) -> str:
    """The v3 error code ('NotFoundError', 'QuotaExceededError', ...) if the body has one."""
    try:
        return str(json.loads(exc.read(65536))["error"]["code"])
    except Exception:
        return str(exc.reason)


@dataclass(frozen=True)
class VirusTotalSettings:
    base_url: str
    api_key: str
    per_minute: int = 4
    per_day: int = 500
    threshold: int = 1
    timeout_s: float = 20.0


class VirusTotalWorker(threading.Thread):
    """Looks up pending hashes from the state file, paced by the rate limit."""

    def __init__(self, state_path: Path, stop: Stopper, settings: VirusTotalSettings,
                 clock: Callable[[], float] = time.time, idle_s: float = 0.5) -> None:
        super().__init__(name="virustotal", daemon=True)
        self._state_path, self._stopper, self._clock, self._idle_s = state_path, stop, clock, idle_s
        self.settings = settings

    def run(self) -> None:
        state = NotifierState(self._state_path)
        try:
            while not self._stopper.is_set():
                self._stopper.wait(self.step(state))
        finally:
            state.close()

    def step(self, state: NotifierState) -> float:
        """Do at most one lookup; returns how long to sleep before the next step."""
        now = self._clock()
        request = state.next_lookup(now)
        if request is None:
            return self._idle_s
        recent = state.lookup_times(min(now - 60.0, now - now % DAY_S))
        vt = self.settings
        allowed = next_lookup_at(now, recent, vt.per_minute, vt.per_day)
        if allowed > now:
            state.set_meta({"vt_waiting_until": str(allowed)})
            return min(allowed - now, self._idle_s)
        state.note_lookup(now)
        try:
            result = lookup(vt.base_url, vt.api_key, request.sha256, vt.timeout_s, vt.threshold)
        except VirusTotalError as exc:
            log.warning("VirusTotal lookup of %s failed: %s", request.sha256, exc)
            state.set_meta({"vt_last_error": f"{self._clock():.0f} {exc}"})
            if exc.retry_after_s is None:
                state.record_verdict(request.sha256, VerdictStatus.ERROR, self._clock(),
                                     detail=str(exc))
            else:
                state.defer_lookup(request.sha256, self._clock() + exc.retry_after_s, str(exc),
                                   self._clock())
                return exc.retry_after_s
            return 0.0
        log.info("VirusTotal: %s (%s): %s", request.path, request.sha256, result.detail)
        state.record_verdict(request.sha256, result.status, self._clock(), result.stats,
                             result.detail)
        return 0.0
