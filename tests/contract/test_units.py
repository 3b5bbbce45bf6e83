"""The systemd units: systemd itself accepts each (`systemd-analyze verify`) and rates each
within its exposure target (`systemd-analyze security --offline=true`, issue 21): the
sensor at most 4.0, every other unit at most 2.5."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from netwarden.units import render
from tests.support.units import UNIT_NAMES, UNITS_DIR, unit_settings

TARGETS = {name: 4.0 if name == "netwarden-sensor.service" else 2.5 for name in UNIT_NAMES}
EXPOSURE = re.compile(r"Overall exposure level for \S+: (\d+\.\d+)")


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing (Debian: package systemd)")
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True,
                          timeout=120)


def test_every_unit_file_is_listed() -> None:
    assert sorted(p.name for p in UNITS_DIR.glob("*.service")) == sorted(UNIT_NAMES)


@pytest.mark.parametrize("name", UNIT_NAMES)
def test_unit_verifies(name: str, tmp_path: Path) -> None:
    # verify wants ExecStart's program to exist: point it at a real file, as an install does
    # (`netwarden systemd install` renders them the same way).
    unit = tmp_path / name
    unit.write_text(render((UNITS_DIR / name).read_text(), Path("/bin/true")))
    done = analyze("verify", str(unit))
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


@pytest.mark.parametrize("name", UNIT_NAMES)
def test_unit_exposure_within_target(name: str) -> None:
    done = analyze("security", "--offline=true", str(UNITS_DIR / name))
    found = EXPOSURE.search(done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= TARGETS[name], done.stdout


@pytest.mark.parametrize("name", UNIT_NAMES)
def test_configuration_error_is_never_restarted(name: str) -> None:
    settings = unit_settings(UNITS_DIR / name)
    statuses = " ".join(settings.get("Service.RestartPreventExitStatus", [])).split()
    assert "78" in statuses
    assert settings["Service.NoNewPrivileges"] == ["yes"]


def test_only_the_sensor_keeps_root() -> None:
    for name in UNIT_NAMES:
        settings = unit_settings(UNITS_DIR / name)
        if name in ("netwarden-sensor.service", "netwarden-notifier.service"):
            # The notifier is a user unit: it runs as the user whose manager starts it.
            assert "Service.User" not in settings
        else:
            assert settings.get("Service.User", ["root"])[0] not in ("root", "0")
