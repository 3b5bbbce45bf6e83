"""The wheel, as a user gets it: `python -m build` makes an sdist and, from it, a wheel whose
BPF objects the build compiled; installed into a fresh venv (no system site-packages, no
checkout on the path), its `netwarden` answers --help, passes `doctor` and attributes a
known transfer. Only libbpf1, a system library, comes from outside the venv.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.privileged.test_attribution import check
from tests.support.netns import PeerNamespace
from tests.support.sensor_proc import REPO, SensorProcess, netwarden

OBJECTS = {"net.bpf.o", "net_compat.bpf.o", "exec.bpf.o", "dns.bpf.o", "scan.bpf.o"}


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600,
                          cwd=cwd)
    assert done.returncode == 0, f"{' '.join(map(str, args))}: {done.stdout}{done.stderr}"
    return done


def system_python() -> str:
    """The interpreter a user would make the venv with (not the test venv's)."""
    return shutil.which("python3", path="/usr/bin:/bin") or sys.executable


@pytest.fixture(scope="module")
def dist(workdir: Path) -> Path:
    """sdist and wheel, built by `python -m build` from a scratch venv holding only `build`."""
    tools = workdir / "build-tools"
    run(system_python(), "-m", "venv", tools)
    run(tools / "bin" / "pip", "install", "-q", "build")
    out = workdir / "dist"
    run(tools / "bin" / "python", "-m", "build", "--outdir", out, REPO, cwd=workdir)
    return out


@pytest.fixture(scope="module")
def installed(dist: Path, workdir: Path) -> Path:
    """A fresh venv with the wheel (no dependencies: the core needs none); its bin/."""
    venv = workdir / "wheel-venv"
    run(system_python(), "-m", "venv", venv)
    (wheel,) = dist.glob("netwarden-*.whl")
    run(venv / "bin" / "pip", "install", "-q", "--no-index", "--no-deps", wheel)
    return venv / "bin"


def test_sdist_carries_the_sources_and_the_wheel_the_objects(dist: Path) -> None:
    (sdist,) = dist.glob("netwarden-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"bpf/Makefile", "bpf/net.bpf.c", "bpf/events.h", "setup.py", "setup.cfg",
            "systemd/netwarden-sensor.service", "packaging/config.toml.example",
            "LICENSE"} <= names
    assert not [name for name in names if name.endswith(".bpf.o")], "built objects in sdist"
    (wheel,) = dist.glob("netwarden-*.whl")
    assert not wheel.name.endswith("-any.whl"), "BPF objects are built per architecture"
    with zipfile.ZipFile(wheel) as archive:
        shipped = {Path(name).name for name in archive.namelist()
                   if "/netwarden/sensor/bpf_objects/" in f"/{name}"}
        units = {Path(name).name for name in archive.namelist() if "/units/files/" in name}
    assert shipped == OBJECTS
    assert units == {p.name for p in (REPO / "systemd").iterdir()}


def test_installed_wheel_runs_from_its_venv(installed: Path) -> None:
    help_text = netwarden("--help", command=(str(installed / "netwarden"),)).stdout
    assert "sensor" in help_text and "doctor" in help_text
    where = run(installed / "python", "-c",
                "import netwarden.sensor.loader as l; print(l.object_path('net.bpf.o'))",
                cwd=Path("/")).stdout.strip()
    assert where.startswith(str(installed.parent)) and Path(where).is_file(), where
    doctor = netwarden("doctor", command=(str(installed / "netwarden"),), timeout=120).stdout
    assert "self-test    PASS" in doctor and "verdict      OK" in doctor, doctor


def test_installed_wheel_writes_units_that_start_it(installed: Path, tmp_path: Path) -> None:
    netwarden("systemd", "install", "--root", str(tmp_path),
              command=(str(installed / "netwarden"),))
    sensor_unit = (tmp_path / "etc/systemd/system/netwarden-sensor.service").read_text()
    assert f"\nExecStart={installed / 'netwarden'} sensor --keep-pinned\n" in sensor_unit
    assert (tmp_path / "etc/sysusers.d/netwarden.conf").is_file()


def test_installed_wheel_attributes_a_transfer(installed: Path, workdir: Path,
                                               peer: PeerNamespace, gen_factory) -> None:
    sensor = SensorProcess.write_config(workdir / "wheel-sensor")
    sensor.command = (str(installed / "netwarden"),)
    sensor.start()
    try:
        client, server = gen_factory("client"), gen_factory("server")
        listener = server.start_listener("tcp-listen", prefix=peer.exec_prefix(), port=0,
                                         host="0.0.0.0", send=250_000)
        try:
            result = client.run("tcp-connect", host=peer.peer_v4, port=listener.port,
                                send=150_000)
            listener.result()
        finally:
            listener.kill()
        totals = check(sensor, client, result)
        assert {row["raddr"] for row in totals.rows} == {peer.peer_v4}
    finally:
        assert sensor.stop() == 0
