"""The sensor works with exactly the privileges its unit gives it, and needs each of them.

The sensor runs under setpriv with systemd/netwarden-sensor.service's capability bounding set
(read from the unit file), no_new_privs and, as the unit asks, MemoryDenyWriteExecute
(PR_SET_MDWE). The session gives each capability a job:

- the store is laid out as in production: a 0750 directory and a database owned by the
  ``[store] owner`` user, which root may only write (CAP_DAC_OVERRIDE), set the mode of
  (CAP_FOWNER) and hand over (CAP_CHOWN); the sensor is restarted once over it;
- the traffic comes from another user's programs in that user's 0700 home, one exec'd as
  ``./NAME``, so its path comes from /proc/PID/exe or cwd (CAP_SYS_PTRACE);
- an unconnected UDP send, whose peer only the cgroup programs see, and the executable
  watch (fanotify, CAP_SYS_ADMIN): a program or watch that failed is a warning in the log
  and a sensor_error event, and the session fails on either.

Then the same session without each capability in turn must fail: the set holds nothing the
sensor does not use.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.privileged.test_attribution import check
from tests.support.netns import PeerNamespace
from tests.support.sensor_proc import SensorProcess
from tests.support.traffic import GenResult, Generator, parse_result
from tests.support.units import (
    UNITS_DIR, allowed_syscalls, capability_bounding_set, sandbox_prefix, stop_traced,
    strace_prefix, traced_syscalls,
)
from tests.support.users import temporary_user

SENSOR_UNIT = UNITS_DIR / "netwarden-sensor.service"


@pytest.fixture
def owner() -> Iterator[pwd.struct_passwd]:
    with temporary_user("nwunit") as account:
        yield account


@pytest.fixture
def unit_sensor(owner: pwd.struct_passwd,
                request: pytest.FixtureRequest) -> Iterator[SensorProcess]:
    """The sensor, not started, with a store laid out as /var/lib/netwarden is: a 0750
    directory of the ``[store] owner`` user. Parametrised with a capability, without it."""
    base = Path(tempfile.mkdtemp(prefix="nwunit-"))
    os.chmod(base, 0o755)
    state = base / "netwarden"
    state.mkdir(mode=0o750)
    os.chown(state, owner.pw_uid, owner.pw_gid)
    proc = SensorProcess.write_config(state, extra=f'[store]\nowner = "{owner.pw_name}"\n')
    proc.prefix = tuple(sandbox_prefix(SENSOR_UNIT, without=getattr(request, "param", None)))
    yield proc
    if proc.proc is not None:
        proc.stop()
    shutil.rmtree(base, ignore_errors=True)


def as_user(account: pwd.struct_passwd) -> list[str]:
    return ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
            "--clear-groups", "--inh-caps=-all"]


def users_program(trafficgen: Path, account: pwd.struct_passwd, name: str) -> Generator:
    """A copy of trafficgen in the user's 0700 home, owned by the user."""
    home = Path(account.pw_dir)
    gen = Generator.copy(trafficgen, home / "bin", name)
    for path in (home / "bin", gen.path):
        os.chown(path, account.pw_uid, account.pw_gid)
    os.chmod(home / "bin", 0o700)
    return gen


def run_relative(program: Generator, account: pwd.struct_passwd, mode: str,
                 **options: object) -> GenResult:
    """Run the user's program as ``./NAME`` from its directory: the exec'd filename is then
    no path, and the sensor must read the process's /proc/PID/exe or cwd, which another
    user's process shows root only with CAP_SYS_PTRACE."""
    command = as_user(account) + [f"./{program.path.name}", mode]
    command += [f"{key}={value}" for key, value in options.items()]
    done = subprocess.run(command, cwd=program.path.parent, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return parse_result(done.stdout)


def attribution_session(unit_sensor: SensorProcess, owner: pwd.struct_passwd,
                        peer: PeerNamespace, trafficgen: Path, gen_factory) -> None:
    """Start the sensor, drive the user's traffic, check it, restart, and check the log,
    the events and the store's files; raise AssertionError or RuntimeError on a failure."""
    unit_sensor.start()
    client, server = users_program(trafficgen, owner, "gen-unit-client"), gen_factory("srv")
    listener = server.start_listener("tcp-listen", prefix=peer.exec_prefix(), port=0,
                                     host="0.0.0.0", send=300_000)
    try:
        tcp = run_relative(client, owner, "tcp-connect", host=peer.peer_v4, port=listener.port,
                           send=200_000)
        listener.result()
    finally:
        listener.kill()
    sender, receiver = users_program(trafficgen, owner, "gen-unit-sender"), gen_factory("recv")
    udp_listener = receiver.start_listener("udp-listen", prefix=peer.exec_prefix(),
                                           host="0.0.0.0", port=0, expect=300, quiet_ms=1500)
    try:
        udp = sender.run("udp-send", prefix=as_user(owner), host=peer.peer_v4,
                         port=udp_listener.port, count=300, size=1000)
        udp_listener.result()
    finally:
        udp_listener.kill()

    for program, result in ((client, tcp), (sender, udp)):
        totals = check(unit_sensor, program, result)
        assert {row["uid"] for row in totals.rows} == {owner.pw_uid}
        assert {row["raddr"] for row in totals.rows} == {peer.peer_v4}

    # A restart opens the store the owner now owns (and sets its mode again).
    assert unit_sensor.stop() == 0
    unit_sensor.start()
    assert unit_sensor.stop() == 0
    log = unit_sensor.log.read_text()
    troubles = [line for line in log.splitlines() if " WARNING " in line or " ERROR " in line]
    assert not troubles, "\n".join(troubles)
    errors = [e for e in unit_sensor.events() if e.get("kind") == "sensor_error"]
    assert not errors, errors
    db = unit_sensor.db.stat()
    assert (db.st_uid, db.st_mode & 0o777) == (owner.pw_uid, 0o640)


def test_sensor_attributes_with_its_units_privileges(unit_sensor: SensorProcess,
                                                     owner: pwd.struct_passwd,
                                                     peer: PeerNamespace, trafficgen: Path,
                                                     gen_factory) -> None:
    attribution_session(unit_sensor, owner, peer, trafficgen, gen_factory)


@pytest.mark.parametrize("unit_sensor", capability_bounding_set(SENSOR_UNIT), indirect=True)
def test_each_capability_of_the_unit_is_needed(unit_sensor: SensorProcess,
                                               owner: pwd.struct_passwd, peer: PeerNamespace,
                                               trafficgen: Path, gen_factory) -> None:
    """Only the capabilities it uses: without any one of them, the same session fails."""
    with pytest.raises((AssertionError, RuntimeError)):
        attribution_session(unit_sensor, owner, peer, trafficgen, gen_factory)


def test_sensor_calls_only_what_its_units_filter_allows(unit_sensor: SensorProcess,
                                                        peer: PeerNamespace,
                                                        gen_factory) -> None:
    """SystemCallFilter= needs systemd to apply; here strace records every call a session
    makes (load, a transfer, a write, a stop), and each must be on the unit's allow-list."""
    trace = unit_sensor.log.parent / "sensor.strace"
    unit_sensor.prefix += tuple(strace_prefix(trace))
    unit_sensor.start(timeout=120)
    client, server = gen_factory("client"), gen_factory("server")
    listener = server.start_listener("tcp-listen", prefix=peer.exec_prefix(), port=0,
                                     host="0.0.0.0", send=100_000)
    try:
        client.run("tcp-connect", host=peer.peer_v4, port=listener.port, send=100_000)
        listener.result()
    finally:
        listener.kill()
    time.sleep(3 * unit_sensor.write_interval_s)
    assert unit_sensor.proc is not None
    assert stop_traced(unit_sensor.proc) == 0
    used = traced_syscalls(trace)
    assert {"bpf", "fanotify_init", "fanotify_mark"} <= used, sorted(used)
    assert not used - allowed_syscalls(SENSOR_UNIT), sorted(used - allowed_syscalls(SENSOR_UNIT))
