"""The connectivity watch's records and its one rule: when a target is up or down.

A target is a probe (``icmp:ADDR``, ``tcp:HOST:PORT``, ``http(s)://URL``, ``dns:NAME@SERVER``)
run every interval. One failed probe is no outage: a target goes down after ``fail_after``
consecutive failures and comes back after ``recover_after`` consecutive successes
(:func:`on_result`). Its windows (up or down) start at the first probe of the streak that
changed its state, so an outage's recorded start is the first failed probe, not the K-th.
A group (e.g. "internet") is down only while all its members are down (:func:`group_state`).
Nothing here touches the system.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import urlsplit

PROBE_KINDS = ("icmp", "tcp", "http", "https", "dns")
PROBE_FORMS = ('"icmp:ADDR", "tcp:HOST:PORT", "http://URL", "https://URL" or '
               '"dns:NAME@SERVER[:PORT]"')


@dataclass(frozen=True)
class Probe:
    kind: str            # one of PROBE_KINDS
    host: str            # ICMP/TCP host, the URL's host, the DNS server
    port: int = 0        # TCP port, URL port (0: the scheme's), DNS server port
    name: str = ""       # DNS: the name asked for
    url: str = ""        # HTTP(S): the whole URL
    text: str = ""       # as written in the config

    def __str__(self) -> str:
        return self.text


def _host_port(text: str) -> tuple[str, str]:
    """'[::1]:53' or 'h:53' -> (host, port text); no port -> (host, '')."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, rest.removeprefix(":")
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, port
    return text, ""


def _port(text: str, what: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{what} port {text!r} is not a number from 1 to 65535")
    return int(text)


def parse_probe(text: str) -> Probe:
    """A probe from its config text; ValueError says what is wrong and what is allowed."""
    kind, sep, rest = text.partition(":")
    kind = kind.lower()
    if kind in ("http", "https"):
        parts = urlsplit(text)
        if not parts.hostname:
            raise ValueError(f"the URL names no host; write {PROBE_FORMS}")
        try:
            port = parts.port or 0
        except ValueError:
            raise ValueError("the URL's port is not a number from 1 to 65535") from None
        return Probe(kind, parts.hostname, port, url=text, text=text)
    if not sep or not rest or kind not in PROBE_KINDS:
        raise ValueError(f"must be {PROBE_FORMS}")
    if kind == "icmp":
        if any(c in rest for c in "/ "):
            raise ValueError(f"{rest!r} is not an address or host name")
        return Probe(kind, rest.strip("[]"), text=text)
    if kind == "tcp":
        host, port = _host_port(rest)
        if not host or not port:
            raise ValueError("wants tcp:HOST:PORT (an IPv6 address in brackets: tcp:[::1]:22)")
        return Probe(kind, host, _port(port, "the TCP"), text=text)
    name, at, server = rest.partition("@")
    if not at or not name.strip(".") or not server:
        raise ValueError("wants dns:NAME@SERVER, e.g. dns:example.com@9.9.9.9 or "
                         "dns:example.com@[2620:fe::fe]:53")
    host, port = _host_port(server)
    return Probe(kind, host, _port(port, "the DNS server's") if port else 53,
                 name=name.rstrip("."), text=text)


@dataclass(frozen=True)
class WatchTarget:
    """One configured target, with the section's defaults already applied."""

    name: str
    probe: Probe
    interval_s: float
    timeout_s: float
    schedule: str = "always"      # netwarden.model.schedule syntax
    expect_status: int = 200      # HTTP(S) only
    group: str = ""               # "" = on its own; members of a group raise no events
    verify_tls: bool = True       # HTTPS only: check the certificate and the host name


@dataclass(frozen=True)
class ProbeResult:
    target: str
    time: float                   # when the probe started
    ok: bool
    latency_s: float | None       # None when it failed
    reason: str = ""              # why it failed ("" when it succeeded)


class State(enum.Enum):
    UNKNOWN = "unknown"           # not enough probes yet (or just back in its schedule)
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class TargetState:
    """What the watcher remembers per target between probes."""

    state: State = State.UNKNOWN
    since: float = 0.0            # start of the current state's window
    streak_ok: bool = True        # the kind of the current run of results
    streak: int = 0               # how many results in that run
    streak_start: float = 0.0     # when the run began
    reason: str = ""              # the latest failure's reason


def on_result(current: TargetState, result: ProbeResult, fail_after: int,
              recover_after: int) -> TargetState:
    """The state after ``result``. A change of ``state`` is a transition: its ``since`` is
    the first probe of the run that caused it."""
    if current.streak and current.streak_ok == result.ok:
        streak, start = current.streak + 1, current.streak_start
    else:
        streak, start = 1, result.time
    reason = current.reason if result.ok else result.reason
    wanted = State.UP if result.ok else State.DOWN
    needed = recover_after if result.ok else fail_after
    state, since = current.state, current.since
    if state is not wanted and streak >= needed:
        state, since = wanted, start
    return TargetState(state, since, result.ok, streak, start, reason)


def group_state(members: list[State]) -> State:
    """Down only when every member is down; up when any is up; else unknown."""
    if members and all(m is State.DOWN for m in members):
        return State.DOWN
    if any(m is State.UP for m in members):
        return State.UP
    return State.UNKNOWN
