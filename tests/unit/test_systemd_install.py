"""`netwarden systemd install|uninstall` into a scratch root: the installation's paths in every
ExecStart, the accounts and directory files beside the units, and an uninstall that removes
what install wrote and nothing else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netwarden.cli import main
from netwarden.units import FILES, MARK, UnitsError, render, source_dir

REPO = Path(__file__).resolve().parents[2]


def test_render_puts_the_executable_in_every_exec_start() -> None:
    text = (source_dir() / "netwarden-sensor.service").read_text()
    rendered = render(text, Path("/opt/nw/venv/bin/netwarden"))
    assert "ExecStart=/opt/nw/venv/bin/netwarden sensor --keep-pinned\n" in rendered
    assert "/usr/local/bin/netwarden" not in rendered
    assert rendered.replace("/opt/nw/venv/bin/netwarden", "/usr/local/bin/netwarden") == text


@pytest.mark.parametrize("bad", ["relative/netwarden", "/opt/my venv/bin/netwarden",
                                 "/opt/100%/netwarden", "/opt/$HOME/netwarden"])
def test_render_refuses_paths_systemd_would_misread(bad: str) -> None:
    with pytest.raises(UnitsError):
        render("ExecStart=/usr/local/bin/netwarden sensor\n", Path(bad))


def test_render_refuses_a_unit_that_starts_something_else() -> None:
    with pytest.raises(UnitsError):
        render("ExecStart=/usr/bin/other\n", Path("/usr/bin/netwarden"))


def test_install_then_uninstall(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exe = "/srv/nw/bin/netwarden"
    assert main(["systemd", "install", "--root", str(tmp_path), "--executable", exe]) == 0
    for item in FILES:
        written = (tmp_path / item.target).read_text()
        assert written.startswith(MARK + "\n")
        assert (tmp_path / item.target).stat().st_mode & 0o777 == 0o644
        if item.is_unit:
            assert f"\nExecStart={exe} " in written
    notifier = tmp_path / "etc/systemd/user/netwarden-notifier.service"
    assert notifier.is_file()

    foreign = tmp_path / "etc/systemd/system/netwarden-dash.service"
    foreign.write_text("[Service]\nExecStart=/usr/bin/netwarden dash\n")   # the admin's own
    assert main(["systemd", "uninstall", "--root", str(tmp_path)]) == 0
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["etc/systemd/system/netwarden-dash.service"]
    assert "kept" in capsys.readouterr().err


def test_install_without_an_installation_says_so(tmp_path: Path) -> None:
    # Run from the checkout with an interpreter whose scripts dir has no netwarden.
    done = subprocess.run([sys.executable, "-I", "-c",
                           "import sys; sys.path.insert(0, sys.argv[1]);"
                           "import sysconfig; sysconfig.get_path = lambda *a, **k: sys.argv[2];"
                           "sys.prefix = sys.argv[2];"
                           "from netwarden.cli import main;"
                           "sys.exit(main(['systemd', 'install', '--root', sys.argv[2]]))",
                           str(REPO), str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 69, done.stderr
    assert "no netwarden executable" in done.stderr
    assert not (tmp_path / "etc").exists()
