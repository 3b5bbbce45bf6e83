"""An optional plain-text connection log: every stored flow row appended to a CSV file.

For people who want `tail -f` and grep rather than SQL. Rotated by size: when the file would
grow past ``max_bytes`` it becomes ``file.1`` (``file.1`` becomes ``file.2``, ...), keeping
``backups`` old files.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from netwarden.model import FlowRow, family_label

FIELDS = ("time", "exe", "sha256", "name", "cmdline", "parent_exe", "parent_sha256", "uid",
          "family", "protocol", "laddr", "lport", "raddr", "rport", "sent", "recv", "domain",
          "container", "netns")


def _cells(row: FlowRow) -> list[object]:
    p = row.program
    return [row.time, p.exe.path, p.exe.sha256, p.name, p.cmdline,
            p.parent.path if p.parent else "", p.parent.sha256 if p.parent else "", p.uid,
            family_label(row.family), row.protocol, row.laddr, row.lport, row.raddr, row.rport,
            row.sent, row.recv, row.domain, p.container, row.netns]


class CsvLog:
    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self._max = max_bytes
        self._backups = backups
        path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, rows: Sequence[FlowRow]) -> None:
        if not rows:
            return
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in rows:
            writer.writerow(_cells(row))
        text = buffer.getvalue()
        size = self.path.stat().st_size if self.path.exists() else 0
        if size and size + len(text) > self._max:
            self._rotate()
            size = 0
        with open(self.path, "a", encoding="utf-8", newline="") as handle:
            if size == 0:
                csv.writer(handle, lineterminator="\n").writerow(FIELDS)
            handle.write(text)

    def _rotate(self) -> None:
        if self._backups == 0:
            os.unlink(self.path)
            return
        for index in range(self._backups - 1, 0, -1):
            older = Path(f"{self.path}.{index}")
            if older.exists():
                os.replace(older, f"{self.path}.{index + 1}")
        os.replace(self.path, f"{self.path}.1")
