"""`netwarden baseline` as a user runs it: output, --json, and the exit statuses."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from netwarden.model import Executable, FlowRow, ProgramIdentity
from netwarden.store.sqlite_writer import SqliteWriter
from tests.support.sensor_proc import netwarden

CURL = ProgramIdentity(Executable("/usr/bin/curl", "a" * 64), "curl", "curl x", 1000)


def run(db: Path, *args: str):  # noqa: ANN201 - CompletedProcess
    return netwarden("baseline", *args, "--db", str(db), check=False)


def test_learn_status_finish_list_approve_revoke(tmp_path: Path):
    db = tmp_path / "store.db"
    assert run(db, "status").returncode == 74          # no store yet
    assert run(db, "learn", "--days", "0").returncode == 2
    done = run(db, "learn", "--days", "2")
    assert done.returncode == 0 and done.stdout.startswith("baseline: learning until ")
    status = json.loads(run(db, "status", "--json").stdout)
    assert status["mode"] == "learning"
    assert round(status["learning_until"] - status["started"]) == 2 * 86400
    assert run(db, "finish").stdout.startswith("baseline: enforcing since ")
    finished = run(db, "finish")
    assert finished.returncode == 64 and "not learning" in finished.stderr
    writer = SqliteWriter(db, 1, group=None)
    writer.write([FlowRow(2, CURL, 2, "tcp", 6, "10.0.0.2", 40000, "192.0.2.1", 443, 1, 1)],
                 [], [], 2**31)
    writer.close()
    listed = [json.loads(line) for line in run(db, "list", "--json").stdout.splitlines()]
    assert [(r["kind"], r["key"], r["status"]) for r in listed] == [
        ("new_program", "/usr/bin/curl", "drift"),
        ("new_destination", "/usr/bin/curl 192.0.2.1", "drift")]
    text = run(db, "status").stdout
    assert "mode: enforcing since" in text and "new_program" in text
    missing = run(db, "approve", "/usr/bin/wget")
    assert missing.returncode == 65 and "no baseline item" in missing.stderr
    approved = run(db, "approve", str(listed[0]["id"]))
    assert approved.returncode == 0 and approved.stdout.startswith("in the baseline: ")
    assert run(db, "list", "--status", "drift").stdout == ""     # the destination came along
    assert "new_destination" in run(db, "list", "--kind", "new_destination").stdout
    revoked = run(db, "revoke", "/usr/bin/curl 192.0.2.1")
    assert revoked.returncode == 0 and revoked.stdout.startswith("revoked")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM baseline").fetchone() == (1,)
