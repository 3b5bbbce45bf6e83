"""The database can be written by the unprivileged discovery service and by root's sensor.

The sensor (root) hands the files to the ``[store] owner`` user; the discovery service runs
as that user (systemd/netwarden-discovery.service) and writes through its own connection.
Here the owner is ``nobody`` and the unprivileged writer runs as nobody for real.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from netwarden.model import Event, EventKind
from netwarden.store.sqlite_writer import SqliteWriter

REPO = Path(__file__).resolve().parents[2]
NOBODY = pwd.getpwnam("nobody")
# What the discovery service does as its user: open its writer and record a known device.
AS_NOBODY = """
import sys, time
from netwarden.config import KnownDevice
from netwarden.store.discovery_writer import DiscoveryWriter
writer = DiscoveryWriter(__import__("pathlib").Path(sys.argv[1]), time.time(), group=None,
                         host="h1")
writer.set_known(KnownDevice("b8:27:eb:12:34:56", "pi", True), time.time())
writer.close()
"""


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory nobody can use, with a copy of the package nobody can import."""
    path = Path(tempfile.mkdtemp(prefix="nwd-owner-"))
    os.chmod(path, 0o755)
    shutil.copytree(REPO / "netwarden", path / "lib" / "netwarden",
                    ignore=shutil.ignore_patterns("__pycache__", "*.bpf.o"))
    data = path / "data"
    data.mkdir()
    os.chown(data, NOBODY.pw_uid, NOBODY.pw_gid)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_as_nobody(shared: Path, db: Path) -> subprocess.CompletedProcess[str]:
    python = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
    return subprocess.run(
        ["setpriv", f"--reuid={NOBODY.pw_uid}", f"--regid={NOBODY.pw_gid}", "--clear-groups",
         "--inh-caps=-all", python, "-c", AS_NOBODY, str(db)],
        capture_output=True, text=True, timeout=60, cwd="/",
        env={"PYTHONPATH": str(shared / "lib"), "PATH": "/usr/bin:/bin",
             "PYTHONDONTWRITEBYTECODE": "1"})


def test_root_hands_the_database_to_the_owner_user(shared_dir: Path):
    db = shared_dir / "data" / "nw.db"
    sensor = SqliteWriter(db, now=1, group=None, host="h1", owner="nobody")
    sensor.write([], [Event.of(1.0, EventKind.SENSOR_STARTED, pid=1)], [], 1)
    for suffix in ("", "-wal", "-shm"):
        info = os.stat(f"{db}{suffix}")
        assert info.st_uid == NOBODY.pw_uid, suffix     # journal files too (SQLite as root)
    assert os.stat(db).st_mode & 0o777 == 0o640

    done = run_as_nobody(shared_dir, db)      # while root's sensor still has it open
    assert done.returncode == 0, done.stderr
    sensor.write([], [Event.of(2.0, EventKind.SENSOR_STOPPED, pid=1)], [], 2)
    sensor.close()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT mac, name FROM known_devices").fetchall() == [
        ("b8:27:eb:12:34:56", "pi")]
    assert [k for (k,) in conn.execute("SELECT kind FROM events ORDER BY id")] == [
        "sensor_started", "sensor_stopped"]


def test_without_the_owner_the_unprivileged_writer_is_refused(shared_dir: Path):
    db = shared_dir / "data" / "nw.db"
    SqliteWriter(db, now=1, group=None, host="h1").close()     # root keeps it
    assert os.stat(db).st_uid == 0
    done = run_as_nobody(shared_dir, db)
    assert done.returncode != 0
    assert "readonly database" in done.stderr or "unable to open" in done.stderr


def unit_capabilities(unit: str) -> list[str]:
    """The unit's CapabilityBoundingSet= (every line of it), as CAP_ names."""
    from tests.support.units import UNITS_DIR, capability_bounding_set
    return ["CAP_" + cap.upper() for cap in capability_bounding_set(UNITS_DIR / unit)]


SENSOR_WRITE = """
import sys
from pathlib import Path
from netwarden.model import Event, EventKind
from netwarden.store.sqlite_writer import SqliteWriter
writer = SqliteWriter(Path(sys.argv[1]), now=3, group=None, host="h1", owner="nobody")
writer.write([], [Event.of(3.0, EventKind.SENSOR_STARTED, pid=2)], [], 3)
writer.close()
"""


def test_the_sensor_units_capabilities_can_write_the_owned_database(shared_dir: Path):
    """Root confined to the sensor unit's bounding set still writes a DB owned by the
    discovery user (so the unit must keep CAP_DAC_OVERRIDE)."""
    db = shared_dir / "data" / "nw.db"
    SqliteWriter(db, now=1, group=None, host="h1", owner="nobody").close()
    caps = ",".join("+" + c.removeprefix("CAP_").lower()
                    for c in unit_capabilities("netwarden-sensor.service"))
    done = subprocess.run(
        ["setpriv", f"--bounding-set=-all,{caps}", "--", sys.executable, "-c", SENSOR_WRITE,
         str(db)], capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=str(shared_dir / "lib")))
    assert done.returncode == 0, done.stderr
    assert os.stat(db).st_uid == NOBODY.pw_uid


def test_the_discovery_unit_runs_as_the_owner_with_cap_net_raw_only():
    text = (REPO / "systemd" / "netwarden-discovery.service").read_text()
    settings = dict(line.split("=", 1) for line in text.splitlines()
                    if "=" in line and not line.startswith("#"))
    from netwarden.config import StoreConfig
    assert settings["User"] == StoreConfig().owner
    assert settings["AmbientCapabilities"] == "CAP_NET_RAW"
    assert unit_capabilities("netwarden-discovery.service") == ["CAP_NET_RAW"]
    assert settings["ExecStart"].endswith("netwarden discovery")
    assert settings["NoNewPrivileges"] == "yes"
