"""What each kind of event is called and how it is shown: one table, keyed by EventKind.

The notifier takes a notice's title and urgency from it, its summaries the kind's label, its
channels the desktop icon and the ntfy tag, the mute list and its editors (`netwarden mute`,
the TUI) the mute text. A kind is described here once; nothing else keys these by string.
A malicious VirusTotal verdict is a notice of the notifier's own, not an event row: it has
its entry beside the table (``VIRUSTOTAL``), as has the scheduled report (``REPORT``).
Nothing here touches the system.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from netwarden.model import EventKind
from netwarden.model.baseline import DriftKind


class Urgency(enum.IntEnum):
    """How pressing a notice is: the freedesktop urgency levels (the hint's byte value)."""

    LOW = 0
    NORMAL = 1
    CRITICAL = 2


@dataclass(frozen=True)
class KindInfo:
    title: str = ""                      # a notice's title; "" for a kind never notified
    urgency: Urgency = Urgency.NORMAL
    one: str = ""                        # a summary counts "1 new program", "3 new programs"
    many: str = ""
    mute: str = ""                       # what muting the kind silences; "" = not mutable
    icon: str = "network-transmit-receive"   # the desktop notification's icon
    tag: str = "computer"                # the ntfy message's tag
    trouble: bool = False                # sensor trouble: its own, longer cooldown
    sha256_field: str = ""               # the field with an executable's hash to look up
    optional: bool = False               # notified only with [notifier] device_changes
    subkind_field: str = ""              # a field whose value splits the kind for mutes
    subkinds: tuple[tuple[str, str], ...] = ()   # (value, what muting kind:value silences)

    @property
    def notified(self) -> bool:
        return bool(self.title)


EVENT_KINDS: Mapping[EventKind, KindInfo] = MappingProxyType({
    EventKind.NEW_EXECUTABLE: KindInfo(
        "New program on the network", one="new program", many="new programs",
        mute="a program uses the network for the first time", sha256_field="sha256"),
    EventKind.EXE_MODIFIED: KindInfo(
        "Program changed on disk", one="changed program", many="changed programs",
        mute="an executable's hash changed", sha256_field="new_sha256"),
    EventKind.NEW_DEVICE: KindInfo(
        "New device on the LAN", one="new LAN device", many="new LAN devices",
        mute="a new device on the LAN", icon="network-wired", tag="satellite"),
    EventKind.DEVICE_CHANGED: KindInfo(
        "LAN device changed", Urgency.LOW, one="changed LAN device",
        many="changed LAN devices", mute="a known LAN device changed address or open ports",
        icon="network-wired", tag="satellite", optional=True),
    EventKind.SENSOR_ERROR: KindInfo(
        "netwarden sensor trouble", one="sensor trouble report", many="sensor trouble reports",
        mute="sensor trouble: lost data, a failed hook, the silent-zero alarm",
        icon="dialog-warning", tag="warning", trouble=True),
    EventKind.HOST_SILENT: KindInfo(
        "Fleet host silent", Urgency.CRITICAL, one="silent host", many="silent hosts",
        mute="a fleet host stopped sending heartbeats", icon="network-offline",
        tag="warning"),
    EventKind.HOST_BACK: KindInfo(
        "Fleet host back", Urgency.LOW, one="host back", many="hosts back",
        mute="a silent fleet host is heard again", icon="network-idle",
        tag="white_check_mark"),
    EventKind.TARGET_DOWN: KindInfo(
        "Connectivity lost", Urgency.CRITICAL, one="target down", many="targets down",
        mute="a watched target (or all of a group) stops answering", icon="network-offline",
        tag="warning"),
    EventKind.TARGET_UP: KindInfo(
        "Connectivity back", Urgency.LOW, one="target back up", many="targets back up",
        mute="a watched target that was down answers again", icon="network-idle",
        tag="white_check_mark"),
    EventKind.DRIFT: KindInfo(
        "Outside the baseline", one="drift from the baseline", many="drifts from the baseline",
        mute="anything outside the learned baseline (drift)", icon="dialog-warning",
        tag="warning", sha256_field="sha256", subkind_field="drift", subkinds=(
            (DriftKind.NEW_PROGRAM.value, "drift: a program outside the baseline"),
            (DriftKind.NEW_DESTINATION.value, "drift: a program's new destination"),
            (DriftKind.NEW_LISTEN_PORT.value, "drift: a new listening port on this host"),
            (DriftKind.NEW_DEVICE.value, "drift: a LAN device outside the baseline"),
            (DriftKind.NEW_DEVICE_PORT.value, "drift: a new open port on a LAN device"))),
    EventKind.PORT_SCAN: KindInfo(
        "Port scan of this host", Urgency.CRITICAL, one="port scan", many="port scans",
        mute="a remote address probes many ports of this host", icon="security-low",
        tag="mag"),
    EventKind.SENSOR_STARTED: KindInfo(),
    EventKind.SENSOR_STOPPED: KindInfo(),
})

#: A malicious VirusTotal verdict (a notice kind, not an event kind).
VIRUSTOTAL = "virustotal"
VIRUSTOTAL_KIND = KindInfo(
    "VirusTotal: malicious program", Urgency.CRITICAL, one="malicious verdict",
    many="malicious verdicts", mute="VirusTotal says a program is malicious",
    icon="dialog-error", tag="rotating_light")

#: The scheduled report ([notifier] report_period): a notice of the notifier's own too.
REPORT = "report"
REPORT_KIND = KindInfo(
    "netwarden report", Urgency.LOW, one="report", many="reports",
    mute="the scheduled report", icon="x-office-document", tag="bar_chart")

#: Every notice kind by the name stored with it (an event kind's value, "virustotal", "report").
NOTICE_KINDS: Mapping[str, KindInfo] = MappingProxyType(
    {kind.value: info for kind, info in EVENT_KINDS.items()}
    | {VIRUSTOTAL: VIRUSTOTAL_KIND, REPORT: REPORT_KIND})

#: Kinds a user can mute, with what they mean (for `netwarden mute --help` and validation);
#: a kind with subkinds can also be muted per subkind, as ``kind:subkind`` (drift:new_program).
MUTABLE_KINDS: Mapping[str, str] = MappingProxyType(
    {name: info.mute for name, info in NOTICE_KINDS.items() if info.mute}
    | {f"{name}:{sub}": mute for name, info in NOTICE_KINDS.items()
       for sub, mute in info.subkinds})


def mute_names(kind: str, fields: Mapping[str, object]) -> tuple[str, ...]:
    """The mute list entries that silence a notice of ``kind`` with ``fields``: the kind,
    and ``kind:subkind`` for a kind split by a field (drift by its drift kind)."""
    info = notice_kind(kind)
    sub = fields.get(info.subkind_field) if info.subkind_field else None
    return (kind,) if sub is None else (kind, f"{kind}:{sub}")

#: Kinds that are known and deliberately silent.
SILENT_KINDS = frozenset(kind.value for kind, info in EVENT_KINDS.items() if not info.notified)

#: What a kind this version does not know (a summary, a newer sensor's) is shown with.
UNKNOWN_KIND = KindInfo()


def event_kind(name: str) -> EventKind | None:
    """The EventKind stored as ``name``; None for a kind this version does not know."""
    try:
        return EventKind(name)
    except ValueError:
        return None


def notice_kind(name: str) -> KindInfo:
    """The entry for a notice's kind; UNKNOWN_KIND's defaults for one not in the table."""
    return NOTICE_KINDS.get(name, UNKNOWN_KIND)


def count_label(kind: str, count: int) -> str:
    """'1 new program', '3 new programs'; '2 foo events' for a kind without a label."""
    info = notice_kind(kind)
    one, many = (info.one, info.many) if info.one else (f"{kind} event", f"{kind} events")
    return f"{count} {one if count == 1 else many}"
