"""The learning period and the baseline (issue 22): what is normal on this host, stated once.

While the baseline learns, every new program, destination (per program), listening port, LAN
device and open port on one is recorded as normal and raises no notification. Once learning
ends, each such thing outside the baseline is *drift*: the writer that first sees it records
it as a drift item and raises one ``drift`` event naming its drift kind. ``netwarden baseline
approve`` turns a drift item into a baseline item; ``revoke`` takes any item out again (seen
once more, it drifts again). Before ``netwarden baseline learn`` has ever run, the mode is
OFF: nothing is learned and nothing drifts.

Keys name a thing the same way everywhere (the store's unique key, the CLI's KEY argument):
a program's path; ``PATH DEST`` (destination: a domain, else an address); ``tcp/8080``;
a MAC; ``MAC tcp/22``. Nothing here touches the system.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from netwarden.model import FlowRow


class DriftKind(enum.Enum):
    """What kind of thing is (or is not) in the baseline; the ``drift`` field of an event."""

    NEW_PROGRAM = "new_program"
    NEW_DESTINATION = "new_destination"
    NEW_LISTEN_PORT = "new_listen_port"
    NEW_DEVICE = "new_device"
    NEW_DEVICE_PORT = "new_device_port"


class Mode(enum.Enum):
    OFF = "off"              # never learned: no baseline, no drift
    LEARNING = "learning"    # new things enter the baseline silently
    ENFORCING = "enforcing"  # new things outside the baseline are drift


class ItemStatus(enum.Enum):
    LEARNED = "learned"      # seen while learning
    APPROVED = "approved"    # a drift item a person approved
    DRIFT = "drift"          # seen after learning, outside the baseline

    @property
    def in_baseline(self) -> bool:
        return self is not ItemStatus.DRIFT


@dataclass(frozen=True)
class BaselineMode:
    """The baseline's mode at a time; ``learning_until`` is set once learning has started
    (when learning ends or ended), ``started`` when the last learning period began."""

    mode: Mode
    learning_until: float | None = None
    started: float | None = None

    def as_record(self) -> dict[str, object]:
        return {"mode": self.mode.value, "learning_until": self.learning_until,
                "started": self.started}


def mode_at(learning_until: float | None, started: float | None, now: float) -> BaselineMode:
    """The mode a stored learning deadline means at ``now``."""
    if learning_until is None:
        return BaselineMode(Mode.OFF)
    mode = Mode.LEARNING if now < learning_until else Mode.ENFORCING
    return BaselineMode(mode, learning_until, started)


@dataclass(frozen=True)
class Fact:
    """Something a writer saw that the baseline may or may not hold; ``fields`` name it for
    people (path, sha256, destination, port, mac, ip, ...)."""

    kind: DriftKind
    key: str
    fields: tuple[tuple[str, object], ...] = field(default=())

    @classmethod
    def of(cls, kind: DriftKind, key: str, **fields: object) -> "Fact":
        return cls(kind, key, tuple(sorted(fields.items())))


@dataclass(frozen=True)
class BaselineItem:
    """A row of the baseline: in it (learned, approved) or a drift item waiting for review."""

    id: int
    kind: DriftKind
    key: str
    status: ItemStatus
    first_seen: float
    updated: float
    fields: tuple[tuple[str, object], ...] = field(default=())

    def as_record(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind.value, "key": self.key,
                "status": self.status.value, "first_seen": self.first_seen,
                "updated": self.updated, "fields": dict(self.fields)}


def program_key(path: str) -> str:
    return path


def destination_key(path: str, destination: str) -> str:
    # A destination is a domain or an address: neither holds a space, so the last space
    # splits the key even for a path that has one.
    return f"{path} {destination}"


def listen_key(protocol: str, port: int) -> str:
    return f"{protocol}/{port}"


def device_key(mac: str) -> str:
    return mac


def device_port_key(mac: str, port: int) -> str:
    return f"{mac} tcp/{port}"


@dataclass(frozen=True)
class ListeningPort:
    """A port this host listens on (TCP LISTEN, or a bound unconnected UDP socket outside the
    ephemeral range), with the program that holds it ("" when it could not be told)."""

    protocol: str           # tcp | udp
    port: int
    address: str            # the bound address: 0.0.0.0, ::, 127.0.0.1, ...
    path: str = ""
    name: str = ""


def listen_fact(port: ListeningPort) -> Fact:
    return Fact.of(DriftKind.NEW_LISTEN_PORT, listen_key(port.protocol, port.port),
                   protocol=port.protocol, port=port.port, address=port.address,
                   path=port.path, name=port.name)


def flow_facts(rows: Iterable[FlowRow], listening: Iterable[ListeningPort] = ()) -> list[Fact]:
    """The programs and (program, destination) pairs a window's flows show.

    A flow from one of this host's listening ports is a client talking to a service here:
    its peer is no destination of the service's program (else every new client would drift).
    """
    served = {(p.protocol, p.port) for p in listening}
    facts: dict[tuple[DriftKind, str], Fact] = {}
    for row in rows:
        exe = row.program.exe
        named = {"path": exe.path, "sha256": exe.sha256, "name": row.program.name}
        key = program_key(exe.path)
        facts.setdefault((DriftKind.NEW_PROGRAM, key),
                         Fact.of(DriftKind.NEW_PROGRAM, key, **named))
        destination = row.domain or row.raddr
        if not destination or (row.protocol, row.lport) in served:
            continue
        key = destination_key(exe.path, destination)
        facts.setdefault((DriftKind.NEW_DESTINATION, key), Fact.of(
            DriftKind.NEW_DESTINATION, key, **named, destination=destination,
            address=row.raddr, port=row.rport, protocol=row.protocol))
    return list(facts.values())


@dataclass(frozen=True)
class BaselineSummary:
    """What the viewers show of the baseline: its mode and how much drift awaits review."""

    mode: BaselineMode
    drift: int = 0
