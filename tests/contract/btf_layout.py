"""Compare a struct's layout in a BPF object's BTF (read by bpftool) with a ctypes mirror."""

from __future__ import annotations

import ctypes
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Member:
    name: str
    offset: int
    size: int


@dataclass(frozen=True)
class Layout:
    size: int
    members: tuple[Member, ...]


def btf_types(obj: Path) -> dict[int, dict[str, object]]:
    out = subprocess.run(["bpftool", "btf", "dump", "file", str(obj), "-j"], check=True,
                         capture_output=True, text=True).stdout
    return {t["id"]: t for t in json.loads(out)["types"]}


def _size(types: dict[int, dict[str, object]], type_id: int) -> int:
    t = types[type_id]
    kind = t["kind"]
    if kind in ("TYPEDEF", "CONST", "VOLATILE", "RESTRICT"):
        return _size(types, int(t["type_id"]))  # type: ignore[arg-type]
    if kind == "ARRAY":
        return int(t["nr_elems"]) * _size(types, int(t["type_id"]))  # type: ignore[arg-type]
    return int(t["size"])  # type: ignore[arg-type]


def btf_layout(obj: Path, struct: str) -> Layout:
    types = btf_types(obj)
    found = [t for t in types.values() if t["kind"] == "STRUCT" and t["name"] == struct]
    if not found:
        raise LookupError(f"struct {struct} is not in the BTF of {obj.name}")
    t = found[0]
    members = tuple(Member(m["name"], m["bits_offset"] // 8, _size(types, m["type_id"]))
                    for m in t["members"])  # type: ignore[union-attr]
    return Layout(int(t["size"]), members)  # type: ignore[arg-type]


def ctypes_layout(cls: type[ctypes.Structure]) -> Layout:
    members = tuple(Member(name, getattr(cls, name).offset, getattr(cls, name).size)
                    for name, *_ in cls._fields_)
    return Layout(ctypes.sizeof(cls), members)


def differences(btf: Layout, mirror: Layout) -> list[str]:
    problems = []
    if btf.size != mirror.size:
        problems.append(f"size: C {btf.size}, Python {mirror.size}")
    for c, py in zip(btf.members, mirror.members, strict=False):
        if c != py:
            problems.append(f"member: C {c}, Python {py}")
    if len(btf.members) != len(mirror.members):
        problems.append(f"members: C has {len(btf.members)}, Python {len(mirror.members)}")
    return problems
