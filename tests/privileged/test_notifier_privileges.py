"""The notifier as root: it refuses without --user, and with it drops privileges for good."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.http_recorder import Recorder
from tests.support.notifier_run import add_events, create_db, new_program
from tests.support.sensor_proc import REPO, netwarden_cmd

NOBODY = pwd.getpwnam("nobody")


def in_fresh_python(code: str) -> dict[str, object]:
    """Run ``code`` in a new interpreter (privileges are process-wide, and this test process
    has imported jeepney and paho for other tests); it prints one JSON report."""
    script = ("import json, os\n"
              "try:\n" + "".join(f"    {line}\n" for line in code.strip().splitlines()) +
              "except BaseException as exc:\n"
              "    report = {'error': f'{type(exc).__name__}: {exc}'}\n"
              "print(json.dumps(report))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_after_the_drop_setuid_0_fails():
    report = in_fresh_python("""
from netwarden.privileges import drop_privileges
drop_privileges("nobody")
try:
    os.setuid(0)
    regained = True
except PermissionError:
    regained = False
report = {"ids": [os.getresuid(), os.getresgid()], "groups": os.getgroups(),
          "regained": regained, "bus": os.environ["DBUS_SESSION_BUS_ADDRESS"]}
""")
    assert report.get("error") is None, report
    uid, gid = NOBODY.pw_uid, NOBODY.pw_gid
    assert report["ids"] == [[uid, uid, uid], [gid, gid, gid]]
    assert report["regained"] is False
    assert 0 not in report["groups"]
    assert report["bus"] == f"unix:path=/run/user/{uid}/bus"


def test_a_third_party_module_imported_as_root_stops_the_drop():
    report = in_fresh_python("""
import jeepney
from netwarden.privileges import drop_privileges
drop_privileges("nobody")
report = {"uid": os.getuid()}
""")
    assert report == {"error": "PrivilegeError: jeepney imported while root; refusing to go on"}


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A temp dir the dropped user can reach (pytest's own tmp_path is root's, mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix="nwtest-notifier-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def nobodys_home(home: Path, program: int) -> tuple[Path, Path, Recorder]:
    """``home`` owned by nobody, with a store holding one new program's event and a user
    config that sends notices to a webhook recorder: (the store, the config, the recorder)."""
    home.mkdir()
    db = home / "netwarden.db"
    create_db(db)
    add_events(db, [new_program(program)])
    hook = Recorder()
    user = home / "user.toml"
    user.write_text(f'[notifier]\ndesktop = false\npoll_interval_s = 0.1\nfirst_run = "all"\n'
                    f'[webhook]\nurl = "{hook.url}/hook"\n')
    for path in [home, *home.iterdir()]:
        os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    return db, user, hook


def test_the_notifier_as_root_serves_the_named_user_unprivileged(shared_dir: Path):
    tmp_path = shared_dir
    home = tmp_path / "home"
    db, user, hook = nobodys_home(home, 1)
    system = tmp_path / "system.toml"
    system.write_text("")
    log = tmp_path / "notifier.log"
    proc = subprocess.Popen(
        netwarden_cmd("notifier", "--user", "nobody", "--config", str(system),
                      "--user-config", str(user), "--db", str(db),
                      "--state", str(home / "state.db"), "--mutes", str(home / "mutes.toml")),
        stdout=subprocess.DEVNULL, stderr=open(log, "wb"), cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        requests = hook.wait_for(1, timeout=20)
        assert len(requests) == 1, log.read_text()
        assert requests[0].json()["fields"]["path"] == "/opt/test/prog1"
        status = Path(f"/proc/{proc.pid}/status").read_text()
        ids = {line.split()[0]: line.split()[1:] for line in status.splitlines()
               if line.startswith(("Uid:", "Gid:", "NoNewPrivs:"))}
        assert ids["Uid:"] == [str(NOBODY.pw_uid)] * 4
        assert ids["Gid:"] == [str(NOBODY.pw_gid)] * 4
        assert ids["NoNewPrivs:"] == ["1"]
        state = (home / "state.db").stat()
        assert (state.st_uid, state.st_mode & 0o777) == (NOBODY.pw_uid, 0o600)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        hook.close()
    text = log.read_text()
    assert code == 0, text
    assert f"privileges dropped to nobody (uid {NOBODY.pw_uid}" in text


def test_the_notifier_works_with_exactly_its_units_privileges(shared_dir: Path):
    """The user unit's sandbox rebuilt with setpriv (tests/support/units.py): the session's
    user, an empty capability bounding set, no_new_privs, MemoryDenyWriteExecute; the
    notifier delivers a new program's notice through its webhook channel."""
    from tests.support.units import UNITS_DIR, sandbox_prefix
    home = shared_dir / "unit-home"
    db, user, hook = nobodys_home(home, 7)
    (shared_dir / "unit-system.toml").write_text("")
    log = shared_dir / "notifier-unit.log"
    proc = subprocess.Popen(
        [*sandbox_prefix(UNITS_DIR / "netwarden-notifier.service", account=NOBODY),
         sys.executable, "-m", "netwarden", "notifier",
         "--config", str(shared_dir / "unit-system.toml"), "--user-config", str(user),
         "--db", str(db), "--state", str(home / "state.db"),
         "--mutes", str(home / "mutes.toml")],
        stdout=subprocess.DEVNULL, stderr=open(log, "wb"), cwd="/",
        env=dict(os.environ, PYTHONPATH=str(REPO), HOME=str(home)))
    try:
        requests = hook.wait_for(1, timeout=30)
        assert len(requests) == 1, log.read_text()
        assert requests[0].json()["fields"]["path"] == "/opt/test/prog7"
        status = dict(line.split(":", 1) for line in      # setpriv execs: the same pid
                      Path(f"/proc/{proc.pid}/status").read_text().splitlines())
        assert status["CapBnd"].strip() == "0" * 16 and status["NoNewPrivs"].strip() == "1"
        assert status["Uid"].split() == [str(NOBODY.pw_uid)] * 4
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        hook.close()
    assert code == 0, log.read_text()


def test_root_without_user_is_refused():
    done = subprocess.run(netwarden_cmd("notifier"), capture_output=True, text=True, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    assert done.returncode == 77
    assert "refusing to run as root" in done.stderr
