"""`netwarden systemd install|uninstall`: the units for a pip installation.

    netwarden systemd install [--root DIR] [--executable PATH]
    netwarden systemd uninstall [--root DIR]

install writes the units (ExecStart: this installation's `netwarden`), the accounts
(sysusers.d) and the store's directory (tmpfiles.d) under /etc, creates the accounts and the
directory, and reloads systemd. It enables nothing: which services run is the owner's choice.
uninstall disables and removes what install wrote; the accounts and /var/lib/netwarden (the
recorded data) stay. ``--root`` writes into another tree and runs nothing (packagers, tests).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from netwarden.cmdline import AddCommand
from netwarden.exits import EXIT_NOPERM, EXIT_OK, EXIT_UNAVAILABLE
from netwarden.config import DEFAULT_PIN_ROOT
from netwarden.units import (
    FILES, UnitsError, installed_executable, remove_files, write_files,
)

_SYSTEM_UNITS = [Path(f.target).name for f in FILES if f.target.startswith("etc/systemd/system/")]
_USER_UNITS = [Path(f.target).name for f in FILES if f.target.startswith("etc/systemd/user/")]


def _run(*command: str) -> None:
    """Run a systemd tool; a failure is reported, not fatal (the files are in place)."""
    if shutil.which(command[0]) is None:
        print(f"netwarden systemd: {command[0]} not found; skipped", file=sys.stderr)
        return
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"netwarden systemd: {' '.join(command)}: {done.stderr.strip()}", file=sys.stderr)


def _systemd_runs() -> bool:
    return Path("/run/systemd/system").is_dir()


def _refuse_unprivileged(root: Path) -> int | None:
    if root == Path("/") and os.geteuid() != 0:
        print("netwarden systemd: writing under /etc needs root (or pass --root DIR)",
              file=sys.stderr)
        return EXIT_NOPERM
    return None


def cmd_install(args: argparse.Namespace) -> int:
    root = args.root
    if (refused := _refuse_unprivileged(root)) is not None:
        return refused
    try:
        executable = args.executable or installed_executable()
        written = write_files(root, executable)
    except UnitsError as exc:
        print(f"netwarden systemd: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    for path in written:
        print(f"wrote {path}")
    if root == Path("/"):
        _run("systemd-sysusers", "/etc/sysusers.d/netwarden.conf")
        _run("systemd-tmpfiles", "--create", "/etc/tmpfiles.d/netwarden.conf")
        if _systemd_runs():
            _run("systemctl", "daemon-reload")
    print(f"units start {executable}. Next: systemctl enable --now netwarden-sensor "
          "netwarden-dash; desktop users: systemctl --user enable --now netwarden-notifier")
    return EXIT_OK


def cmd_uninstall(args: argparse.Namespace) -> int:
    root = args.root
    if (refused := _refuse_unprivileged(root)) is not None:
        return refused
    live = root == Path("/") and _systemd_runs()
    if live:
        _run("systemctl", "disable", "--now", *_SYSTEM_UNITS)
        _run("systemctl", "--global", "disable", *_USER_UNITS)
    removed, foreign = remove_files(root)
    for path in removed:
        print(f"removed {path}")
    for path in foreign:
        print(f"kept {path}: not written by `netwarden systemd install`", file=sys.stderr)
    if live:
        _run("systemctl", "daemon-reload")
        # The stopped sensor (--keep-pinned) left its programs pinned, counting for a next
        # start that will not come: unpinning detaches them (the default [sensor] pin_root).
        shutil.rmtree(DEFAULT_PIN_ROOT, ignore_errors=True)
        print(f"removed the sensor's pinned programs and maps ({DEFAULT_PIN_ROOT})")
    print("kept the accounts and /var/lib/netwarden (the recorded data); delete them by hand "
          "if they should go")
    return EXIT_OK


def cmd_systemd(args: argparse.Namespace) -> int:
    return cmd_install(args) if args.action == "install" else cmd_uninstall(args)


def add_commands(add: AddCommand) -> None:
    parser = add("systemd", cmd_systemd,
                 "install or remove the systemd units for this (pip) installation",
                 config=False)
    parser.add_argument("action", choices=("install", "uninstall"))
    parser.add_argument("--root", type=Path, default=Path("/"), metavar="DIR",
                        help="write into this tree instead of / and run no systemd tool")
    parser.add_argument("--executable", type=Path, metavar="PATH",
                        help="the netwarden the units start (default: this installation's, "
                             f"e.g. {Path(sys.prefix) / 'bin' / 'netwarden'})")
