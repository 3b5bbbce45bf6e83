"""The Prometheus text exposition format (version 0.0.4), written by hand: it is small, and
netwarden then needs no client library at run time.

Format: https://prometheus.io/docs/instrumenting/exposition_formats/ . Each family is one
`# HELP` line, one `# TYPE` line and its samples, families never interleaved; a label value
escapes backslash, double quote and newline; HELP text escapes backslash and newline.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge")


@dataclass(frozen=True, order=True)
class Sample:
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True)
class Family:
    """One metric: its name, type, help and samples (one per label set)."""

    name: str
    kind: str                      # "counter" or "gauge"
    help: str
    samples: tuple[Sample, ...] = field(default=())

    def __post_init__(self) -> None:
        # Names are ours, not the data's: a wrong one is a bug, caught by the unit tests.
        if not _NAME.fullmatch(self.name) or self.name.startswith("__"):
            raise ValueError(f"bad metric name {self.name!r}")
        if self.kind not in TYPES:
            raise ValueError(f"{self.name}: type {self.kind!r} is not one of {TYPES}")
        if self.kind == "counter" and not self.name.endswith("_total"):
            raise ValueError(f"{self.name}: a counter's name ends in _total")
        for sample in self.samples:
            for label, _ in sample.labels:
                if not _LABEL.fullmatch(label) or label.startswith("__"):
                    raise ValueError(f"{self.name}: bad label name {label!r}")


def family(name: str, kind: str, help_text: str,
           values: Iterable[tuple[Mapping[str, str], float]] | float) -> Family:
    """A family from (labels, value) pairs, sorted by labels so scrapes read alike; a bare
    number is the one sample of an unlabelled metric."""
    if isinstance(values, (int, float)):
        return Family(name, kind, help_text, (Sample((), float(values)),))
    samples = sorted(Sample(tuple(labels.items()), float(value)) for labels, value in values)
    return Family(name, kind, help_text, tuple(samples))


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2 ** 63:
        return str(int(value))       # byte counts print exactly, not as 1.2e+09
    return repr(value)


def _sample_line(name: str, sample: Sample) -> str:
    if not sample.labels:
        return f"{name} {format_value(sample.value)}"
    labels = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in sample.labels)
    return f"{name}{{{labels}}} {format_value(sample.value)}"


def render(families: Sequence[Family]) -> str:
    """The exposition text of ``families`` (names must be unique), ending in a newline."""
    seen: set[str] = set()
    lines: list[str] = []
    for fam in families:
        if fam.name in seen:
            raise ValueError(f"metric {fam.name} given twice")
        seen.add(fam.name)
        lines.append(f"# HELP {fam.name} {escape_help(fam.help)}")
        lines.append(f"# TYPE {fam.name} {fam.kind}")
        lines.extend(_sample_line(fam.name, s) for s in fam.samples)
    return "\n".join(lines) + "\n"
