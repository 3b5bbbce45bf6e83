"""The distribution recipes agree with each other and with the Python metadata: one version,
and every file of systemd/ installed by each (packaging/debian, packaging/rpm, packaging/arch)."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"


def setup_cfg_version() -> str:
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    return parser["metadata"]["version"]


def debian_version() -> str:
    first = (PACKAGING / "debian" / "changelog").read_text().splitlines()[0]
    found = re.fullmatch(r"netwarden \(([^)]+)\) \S+; urgency=\S+", first)
    assert found, first
    return found.group(1).split("-")[0]      # a Debian revision would follow a '-'


def field(path: Path, pattern: str) -> str:
    found = re.search(pattern, path.read_text(), re.MULTILINE)
    assert found, f"{path.name}: no match for {pattern}"
    return found.group(1)


def test_one_version_everywhere() -> None:
    versions = {
        "setup.cfg": setup_cfg_version(),
        "debian/changelog": debian_version(),
        "rpm spec": field(PACKAGING / "rpm" / "netwarden.spec", r"^Version:\s+(\S+)$"),
        "PKGBUILD": field(PACKAGING / "arch" / "PKGBUILD", r"^pkgver=(\S+)$"),
    }
    assert len(set(versions.values())) == 1, versions


def test_rpm_changelog_names_the_version() -> None:
    spec = PACKAGING / "rpm" / "netwarden.spec"
    release = field(spec, r"^Release:\s+(\d+)")
    assert field(spec, r"^\* .+ - (\S+)$") == f"{setup_cfg_version()}-{release}"


def loop_units(text: str) -> set[str]:
    """The system units a recipe's loop installs (`UNITS :=`, `%global units`, `for unit in`),
    as file names."""
    words = " ".join(re.findall(r"^.*(?:for unit in|UNITS :=|%global units)(.*)$", text, re.M))
    names = set()
    for word in re.findall(r"[a-z][a-z.-]+", words.replace("; do", "")):
        if word in ("do", "units", "unit", "in"):
            continue
        name = word if word.startswith("netwarden-") else f"netwarden-{word}"
        names.add(name if name.endswith(".service") else f"{name}.service")
    return names


@pytest.mark.parametrize("recipe", ["debian/rules", "rpm/netwarden.spec", "arch/PKGBUILD"])
def test_every_systemd_file_is_installed(recipe: str) -> None:
    text = (PACKAGING / recipe).read_text()
    system_units = {p.name for p in (REPO / "systemd").glob("*.service")
                    if p.name != "netwarden-notifier.service"}
    assert loop_units(text) == system_units
    for name in ("netwarden-notifier.service", "netwarden.sysusers", "netwarden.tmpfiles"):
        assert name in text, f"{recipe} does not install {name}"
    assert "/usr/local/bin/netwarden" in text, f"{recipe} must rewrite ExecStart"
    assert "packaging/config.toml.example" in text
