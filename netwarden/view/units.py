"""Byte counts as people read them, in a chosen unit or the best-fitting one."""

from __future__ import annotations

import enum


class ByteUnit(enum.Enum):
    B = ("B", 1)
    KIB = ("KiB", 1 << 10)
    MIB = ("MiB", 1 << 20)
    GIB = ("GiB", 1 << 30)
    AUTO = ("auto", 0)

    @property
    def label(self) -> str:
        return self.value[0]

    @property
    def factor(self) -> int:
        return self.value[1]

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


def best_unit(count: int) -> ByteUnit:
    """The largest unit in which `count` is at least 1 (B for small counts)."""
    for unit in reversed(_FIXED):
        if abs(count) >= unit.factor:
            return unit
    return ByteUnit.B


def format_bytes(count: int, unit: ByteUnit = ByteUnit.AUTO) -> str:
    """'1.5 MiB', '812 B', '0.0 GiB': bytes are whole, larger units get one decimal."""
    chosen = best_unit(count) if unit is ByteUnit.AUTO else unit
    if chosen is ByteUnit.B:
        return f"{count} B"
    return f"{count / chosen.factor:.1f} {chosen.label}"
