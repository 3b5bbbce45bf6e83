from __future__ import annotations

import csv
from pathlib import Path

from netwarden.model import Executable, FlowRow, ProgramIdentity
from netwarden.sensor.csvlog import FIELDS, CsvLog

PROGRAM = ProgramIdentity(Executable("/usr/bin/curl", "a" * 64), "curl", "curl -s x", 1000)


def row(port: int) -> FlowRow:
    return FlowRow(1000, PROGRAM, 2, "tcp", 6, "10.0.0.2", port, "1.1.1.1", 443, 10, 20,
                   domain="one.one.one.one")


def test_rotation_keeps_the_configured_backups(tmp_path: Path):
    path = tmp_path / "flows.csv"
    log = CsvLog(path, max_bytes=1000, backups=2)
    for port in range(1, 60):
        log.append([row(port)])
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["flows.csv", "flows.csv.1", "flows.csv.2"]
    assert all(f.stat().st_size <= 1000 for f in files)
    seen_ports = []
    for f in (files[2], files[1], files[0]):            # oldest first
        with open(f, newline="") as handle:
            records = list(csv.DictReader(handle))
        assert tuple(records[0]) == FIELDS             # every file starts with the header
        seen_ports += [int(r["lport"]) for r in records]
    assert seen_ports == sorted(seen_ports) and seen_ports[-1] == 59   # nothing reordered
    assert records[-1]["domain"] == "one.one.one.one" and records[-1]["sha256"] == "a" * 64


def test_no_backups_means_start_over(tmp_path: Path):
    path = tmp_path / "flows.csv"
    log = CsvLog(path, max_bytes=600, backups=0)
    for port in range(1, 20):
        log.append([row(port)])
    assert [f.name for f in tmp_path.iterdir()] == ["flows.csv"]
    assert path.stat().st_size <= 600
