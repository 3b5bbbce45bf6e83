"""Session fixtures for tests that need root: the real sensor, a test LAN, the generator."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netns import PeerNamespace, default_peer
from tests.support.sensor_proc import SensorProcess
from tests.support.traffic import Generator, build_trafficgen


@pytest.fixture(scope="session", autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        pytest.skip("privileged tests need root")


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="nwtest-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def trafficgen(workdir: Path) -> Path:
    return build_trafficgen(workdir / "build")


@pytest.fixture
def gen_factory(trafficgen: Path, workdir: Path, request: pytest.FixtureRequest):
    """gen_factory("client") -> a Generator copy unique to this test."""
    test_dir = workdir / "exe" / request.node.name.replace("[", "_").replace("]", "")

    def make(role: str) -> Generator:
        return Generator.copy(trafficgen, test_dir, f"gen-{role}")
    return make


@pytest.fixture(scope="session")
def peer() -> Iterator[PeerNamespace]:
    ns = default_peer(0)
    yield ns
    ns.delete()


@pytest.fixture(scope="session")
def sensor(workdir: Path) -> Iterator[SensorProcess]:
    proc = SensorProcess.write_config(workdir / "sensor")
    proc.start()
    yield proc
    proc.stop()
