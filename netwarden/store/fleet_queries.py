"""The fleet as the server sees it: each host's latest heartbeat (state, lag, last error)."""

from __future__ import annotations

from typing import NamedTuple

from netwarden.store.read_source import ReadSource


class FleetHost(NamedTuple):
    host: str
    last_heartbeat: float      # epoch s
    state: str                 # the sink's state then (caught up, shipping, ...)
    behind_rows: int
    behind_s: float
    shipped_rows: int
    error: str


_LATEST = """
SELECT h.host, h.time, h.state, h.behind_rows, h.behind_s, h.shipped_rows, h.error
FROM heartbeats h
WHERE h.time = (SELECT MAX(w.time) FROM heartbeats w WHERE w.host = h.host)
ORDER BY h.host
"""


def fleet_hosts(source: ReadSource) -> list[FleetHost]:
    """Every host that ever sent a heartbeat, with its latest one, by name."""
    latest: dict[str, FleetHost] = {}
    for row in source.rows(_LATEST):
        host = FleetHost(str(row[0]), float(row[1]), str(row[2]), int(row[3]), float(row[4]),
                         int(row[5]), str(row[6]))
        latest.setdefault(host.host, host)      # two stores' heartbeats in the same ms
    return list(latest.values())
