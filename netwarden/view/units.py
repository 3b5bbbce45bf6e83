"""Byte counts as people read them, in a chosen unit or the best-fitting one, in one unit
system (IEC: KiB = 1024 B, the default; or SI: kB = 1000 B) shared by every viewer: a chart's
axis and the table beside it must never disagree ([view] units)."""

from __future__ import annotations

import enum


class UnitSystem(enum.Enum):
    """(config name, base, labels of 1, base, base**2, base**3 bytes)."""

    IEC = ("iec", 1024, ("B", "KiB", "MiB", "GiB"))
    SI = ("si", 1000, ("B", "kB", "MB", "GB"))

    @property
    def setting(self) -> str:
        return self.value[0]

    @property
    def base(self) -> int:
        return self.value[1]

    @classmethod
    def parse(cls, text: str) -> "UnitSystem":
        for item in cls:
            if item.setting == text.lower():
                return item
        raise ValueError(f"unknown unit system {text!r}; known: "
                         + ", ".join(s.setting for s in cls))


#: Names of a unit system's settings, for the config's choices.
UNIT_SYSTEMS = tuple(s.setting for s in UnitSystem)


class ByteUnit(enum.Enum):
    """A scale (a power of the system's base); the member names and `label` are IEC's, which
    the TUI's unit key cycles through; `label_in`/`factor_in` give another system's."""

    B = ("B", 0)
    KIB = ("KiB", 1)
    MIB = ("MiB", 2)
    GIB = ("GiB", 3)
    AUTO = ("auto", -1)

    @property
    def label(self) -> str:
        return self.value[0]

    @property
    def power(self) -> int:
        return self.value[1]

    @property
    def factor(self) -> int:
        return self.factor_in(UnitSystem.IEC)

    def factor_in(self, system: UnitSystem) -> int:
        return 0 if self is ByteUnit.AUTO else system.base ** self.power

    def label_in(self, system: UnitSystem) -> str:
        return "auto" if self is ByteUnit.AUTO else system.value[2][self.power]

    def next(self) -> "ByteUnit":
        members = list(ByteUnit)
        return members[(members.index(self) + 1) % len(members)]

    @classmethod
    def parse(cls, text: str) -> "ByteUnit":
        for item in cls:
            if item.label.lower() == text.lower():
                return item
        raise ValueError(f"unknown unit {text!r}; known: " + ", ".join(u.label for u in cls))


_FIXED = (ByteUnit.B, ByteUnit.KIB, ByteUnit.MIB, ByteUnit.GIB)


def best_unit(count: float, system: UnitSystem = UnitSystem.IEC) -> ByteUnit:
    """The largest unit in which `count` is at least 1 (B for small counts)."""
    for unit in reversed(_FIXED):
        if abs(count) >= unit.factor_in(system):
            return unit
    return ByteUnit.B


def format_bytes(count: int, unit: ByteUnit = ByteUnit.AUTO,
                 system: UnitSystem = UnitSystem.IEC) -> str:
    """'1.5 MiB', '812 B', '0.0 GiB': bytes are whole, larger units get one decimal."""
    chosen = best_unit(count, system) if unit is ByteUnit.AUTO else unit
    if chosen is ByteUnit.B:
        return f"{count} B"
    return f"{count / chosen.factor_in(system):.1f} {chosen.label_in(system)}"


def axis_unit(largest: float, system: UnitSystem = UnitSystem.IEC) -> ByteUnit:
    """The unit a chart's axis is drawn in: the one its largest value is best read in.

    Charts scale their data into this unit and name it in the axis title, instead of
    plotly's own SI tick suffixes ('15.0M'), which would disagree with IEC tables."""
    return best_unit(largest, system)
