"""A store with a connectivity watch's history, written by the real watcher and writer from a
scripted series of probe results (the probes themselves are tested against real servers in
tests/privileged/test_watch.py).

Every minute for the last three hours before ``now``: "gw" (icmp) fails for ten minutes from
two hours before; "web" (tcp, group "internet") fails twice for five minutes; "dns" (group
"internet") fails during web's second outage, so the group is down for those five minutes.
Latencies: gw 1 ms, web 20 ms, dns 5 ms.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from netwarden.config import config_from_dict
from netwarden.discovery.watch import Watcher
from netwarden.model.watch import ProbeResult, WatchTarget
from netwarden.stopper import Stopper
from netwarden.store.watch_writer import WatchWriter

STEP = 60.0
TARGETS = [
    {"name": "gw", "probe": "icmp:192.0.2.1"},
    {"name": "web", "probe": "tcp:192.0.2.80:443", "group": "internet"},
    {"name": "dns", "probe": "dns:example.com@192.0.2.53", "group": "internet"},
]
LATENCY_S = {"gw": 0.001, "web": 0.020, "dns": 0.005}


def outages(now: float) -> dict[str, list[tuple[float, float]]]:
    """Each target's scripted outages: [start, end) of its failing probes."""
    return {"gw": [(now - 7200, now - 6600)],
            "web": [(now - 9000, now - 8700), (now - 3600, now - 3300)],
            "dns": [(now - 3600, now - 3300)]}


def seed_watch(db: Path, now: float, host: str = "testhost") -> None:
    config = config_from_dict({"watch": {"target": TARGETS}}).watch
    script = outages(now)
    clock = [now - 3 * 3600]

    def probe(target: WatchTarget) -> ProbeResult:
        t = clock[0]
        if any(start <= t < end for start, end in script[target.name]):
            return ProbeResult(target.name, t, False, None, "timed out")
        return ProbeResult(target.name, t, True, LATENCY_S[target.name])

    writer = WatchWriter(db, now, group=None, host=host)
    try:
        watcher = Watcher(config, writer, Stopper(), clock=lambda: clock[0],
                          local_now=lambda: dt.datetime.fromtimestamp(clock[0]).astimezone(),
                          probe=probe, workers=1)
        while clock[0] < now:
            watcher.run_round(watcher.targets)
            clock[0] += STEP
    finally:
        writer.close()
