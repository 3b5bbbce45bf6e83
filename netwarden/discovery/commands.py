"""The LAN discovery subcommands: scan, discovery, devices, presence, known.

Registered into the `netwarden` parser by ``add_commands``. Bad input (an invalid CIDR, an
oversized subnet, a missing interface, a bad port list or MAC) is one line on stderr and exit
status 64; from the config file it is 78. Nothing heavy is imported until a command runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable

from netwarden.cmdline import AddCommand, config_of, epoch
from netwarden.config import DISCOVERY_METHODS, Config, normalise_mac
from netwarden.exits import (
    EXIT_CONFIG_ERROR,
    EXIT_IOERR,
    EXIT_NOPERM,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
)
from netwarden.model.discovery import KnownDevice

log = logging.getLogger("netwarden.discovery")


class UsageError(ValueError):
    """A flag's value is wrong; the message names the flag and what is allowed."""


def _fail(command: str, message: str, status: int) -> int:
    print(f"netwarden {command}: {message}", file=sys.stderr)
    return status


def parse_ports(text: str) -> tuple[int, ...]:
    """'22,80,8000-8010' -> ports; UsageError naming the bad part."""
    ports: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        low, sep, high = part.partition("-")
        try:
            first, last = int(low), int(high if sep else low)
        except ValueError:
            raise UsageError(f"--ports: {part!r} is not a port or a range like 8000-8010") \
                from None
        if not 1 <= first <= last <= 65535:
            raise UsageError(f"--ports: {part!r} is outside 1-65535 or a backwards range")
        ports.update(range(first, last + 1))
    return tuple(sorted(ports))


def parse_methods(text: str) -> tuple[str, ...]:
    methods = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in methods if m not in DISCOVERY_METHODS]
    if bad or not methods:
        raise UsageError(f"--methods: unknown {', '.join(bad) or 'empty list'}; choose from "
                         + ", ".join(DISCOVERY_METHODS))
    return methods


# ---- scan ----

def cmd_scan(args: argparse.Namespace) -> int:
    from netwarden.discovery.errors import DiscoveryInputError
    from netwarden.discovery.scan import Scanner, build_methods
    from netwarden.discovery.target import choose_target, read_link_state
    config = config_of(args)
    settings = config.discovery
    try:
        ports = parse_ports(args.ports) if args.ports is not None else None
        methods = parse_methods(args.methods) if args.methods is not None else None
        target = choose_target(read_link_state(), args.interface or _first(settings.interfaces),
                               args.subnet or list(settings.subnets), settings.max_subnet_size)
    except (UsageError, DiscoveryInputError) as exc:
        return _fail("scan", str(exc), EXIT_USAGE)
    scanner = Scanner(build_methods(settings, methods, ports), settings.presence_gap_s)
    result = scanner.scan(target)
    if args.json:
        print(json.dumps(result.as_record(), indent=2, ensure_ascii=False))
    else:
        _print_scan(result)
    if args.record:
        _record(config, result)
    if not any(r.state.value == "ran" for r in result.reports):
        return _fail("scan", "no discovery method could run (see the reasons above)",
                     EXIT_UNAVAILABLE)
    return EXIT_OK


def _first(items: tuple[str, ...]) -> str | None:
    return items[0] if items else None


def _print_scan(result: object) -> None:
    from netwarden.model.discovery import ScanResult
    from netwarden.view.devices import device_table_lines, row_from_scan
    assert isinstance(result, ScanResult)
    width = max(80, _terminal_width())
    for line in device_table_lines([row_from_scan(d) for d in result.devices], width,
                                   result.time):
        print(line)
    print(f"\n{len(result.devices)} devices on {result.target.interface} "
          f"({', '.join(str(s) for s in result.target.subnets)})")
    for report in result.reports:
        why = report.reason or report.summary
        print(f"  {report.method:<10} {report.state.value:<11} {report.duration_s:5.1f}s  {why}")
    if result.unresolved:
        print("  answered without a MAC: " + ", ".join(result.unresolved))


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 132


def _record(config: Config, result: object) -> None:
    from netwarden.store.discovery_writer import DiscoveryWriter
    writer = DiscoveryWriter(config.db_path, time.time(), config.store.group or None,
                             config.store.owner or None)
    try:
        known = {k.mac: k for k in config.discovery.known}
        known.update(writer.known_devices())
        writer.record_scan(result, config.discovery.presence_gap_s, known)  # type: ignore[arg-type]
    finally:
        writer.close()


# ---- discovery (the service) ----

def cmd_discovery(args: argparse.Namespace) -> int:
    from netwarden.discovery.errors import DiscoveryInputError
    from netwarden.discovery.scan import Scanner, build_methods
    from netwarden.discovery.service import DiscoveryService, targets_for
    from netwarden.discovery.target import read_link_state
    from netwarden.stopper import Stopper
    config = config_of(args)
    settings = config.discovery
    stop = Stopper()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop.request)
    try:
        targets_for(settings, read_link_state(), args.interface or ())
    except DiscoveryInputError as exc:
        status = EXIT_USAGE if args.interface else EXIT_CONFIG_ERROR
        return _fail("discovery", str(exc), status)
    writer = _open_writer(config)
    if isinstance(writer, int):
        return writer
    if os.geteuid() == 0:
        log.warning("running as root: the netwarden-discovery unit runs it as user "
                    "'netwarden' with only CAP_NET_RAW")
    service = DiscoveryService(settings, Scanner(build_methods(settings),
                                                 settings.presence_gap_s),
                               writer, read_link_state, stop, args.interface or ())
    log.info("discovery running every %d s; writing to %s", settings.interval_s,
             config.db_path)
    from netwarden.discovery.watch_commands import start_watch_thread
    watch = None if args.once else start_watch_thread(config, stop)
    try:
        if args.once:
            service.run_once()
        else:
            service.run()
    finally:
        writer.close()
        if watch is not None:
            stop.request()
            watch.join(timeout=30)
    return EXIT_OK


def _open_writer(config: Config) -> object:
    from netwarden.store.discovery_writer import DiscoveryWriter
    try:
        return DiscoveryWriter(config.db_path, time.time(), config.store.group or None,
                               config.store.owner or None)
    except PermissionError as exc:
        return _fail("discovery", f"cannot write {config.db_path}: {exc.strerror} (run as "
                     f"the database's owner, user '{config.store.owner}', or root)",
                     EXIT_NOPERM)
    except Exception as exc:  # noqa: BLE001 - sqlite3 says "unable to open database file"
        if "readonly" in str(exc) or "unable to open" in str(exc):
            return _fail("discovery", f"cannot write {config.db_path}: {exc} (run as the "
                         f"database's owner, user '{config.store.owner}', or root)",
                         EXIT_NOPERM)
        raise


# ---- devices / presence / known (read the store; `known set` writes it) ----



def _readable_store(command: str, func: Callable[[argparse.Namespace], int]
                    ) -> Callable[[argparse.Namespace], int]:
    """A database written before discovery existed has no device tables: say so."""
    def run(args: argparse.Namespace) -> int:
        import sqlite3
        try:
            return func(args)
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            return _fail(command, "the database has no discovery tables yet (it was written "
                         "by an older netwarden); run `netwarden discovery --once` or the "
                         "sensor once to upgrade it", EXIT_IOERR)
    return run


def cmd_devices(args: argparse.Namespace) -> int:
    from netwarden.store.device_queries import devices
    from netwarden.store.sqlite_db import open_readonly
    from netwarden.view.devices import device_table_lines, row_from_store
    config = config_of(args)
    rows = devices(open_readonly(config.db_path), config.discovery.known)
    if args.json:
        for row in rows:
            print(json.dumps(row.as_record(), ensure_ascii=False))
        return EXIT_OK
    for line in device_table_lines([row_from_store(r) for r in rows],
                                   max(80, _terminal_width())):
        print(line)
    return EXIT_OK


def cmd_presence(args: argparse.Namespace) -> int:
    from netwarden.store.device_queries import presence_windows, present_at
    from netwarden.store.sqlite_db import open_readonly
    mac = None
    if args.mac is not None:
        mac = normalise_mac(args.mac)
        if mac is None:
            return _fail("presence", f"{args.mac!r} is not a MAC address", EXIT_USAGE)
    conn = open_readonly(config_of(args).db_path)
    if args.at is not None:
        for present in present_at(conn, args.at):
            if mac is None or present == mac:
                print(json.dumps({"mac": present, "at": args.at}))
        return EXIT_OK
    for window in presence_windows(conn, mac, args.since):
        print(json.dumps(window.as_record()))
    return EXIT_OK


def cmd_known(args: argparse.Namespace) -> int:
    from netwarden.store.device_queries import known_devices
    from netwarden.store.sqlite_db import open_readonly
    config = config_of(args)
    if args.action == "list":
        stored = {k.mac: k for k in known_devices(open_readonly(config.db_path))}
        for k in config.discovery.known:
            if k.mac not in stored:
                print(json.dumps({"mac": k.mac, "name": k.name, "trusted": k.trusted,
                                  "from": "config"}))
        for k in stored.values():
            print(json.dumps({"mac": k.mac, "name": k.name, "trusted": k.trusted,
                              "from": "store"}))
        return EXIT_OK
    mac = normalise_mac(args.mac or "")
    if mac is None:
        return _fail("known", f"{args.mac!r} is not a MAC address (like b8:27:eb:12:34:56)",
                     EXIT_USAGE)
    writer = _open_writer(config)
    if isinstance(writer, int):
        return writer
    try:
        if args.action == "set":
            known = KnownDevice(mac, args.name or "", args.trusted)
            writer.set_known(known, time.time())  # type: ignore[attr-defined]
        elif not writer.remove_known(mac):  # type: ignore[attr-defined]
            return _fail("known", f"{mac} is not in the store's known devices", EXIT_USAGE)
    finally:
        writer.close()  # type: ignore[attr-defined]
    return EXIT_OK


# ---- parser ----

def add_commands(add: AddCommand) -> None:
    scan = add("scan", cmd_scan,
               "one LAN discovery pass: devices by MAC with vendor, names, services, open "
               "ports (the ARP sweep needs CAP_NET_RAW; the rest runs unprivileged)")
    scan.add_argument("--subnet", action="append", metavar="CIDR",
                      help="IPv4 subnet to sweep, on the interface (repeatable; default: the "
                           "interface's own subnets, refused when larger than "
                           "[discovery] max_subnet_size)")
    scan.add_argument("--interface", metavar="IF",
                      help="interface to scan from (default: [discovery] interfaces, else "
                           "the interface of the default route)")
    scan.add_argument("--ports", metavar="LIST",
                      help="TCP ports to probe on live devices, e.g. 22,80,8000-8010 "
                           "(default: [discovery] ports)")
    scan.add_argument("--methods", metavar="LIST",
                      help="methods to run, comma-separated: " + ",".join(DISCOVERY_METHODS))
    scan.add_argument("--json", action="store_true",
                      help="one JSON document: devices (mac, ip, ips, vendor, randomized, "
                           "names, services, open_ports, device_type, type_reasons) and "
                           "methods (ran / unavailable / failed, with why)")
    scan.add_argument("--record", action="store_true",
                      help="also write the pass into the store, as the service would")
    disc = add("discovery", cmd_discovery,
               "the LAN discovery service: a pass every [discovery] interval_s, devices, "
               "presence windows and new_device / device_changed events into the store; "
               "with [[watch.target]]s, the connectivity watch too (target_down/target_up)")
    disc.add_argument("--interface", action="append", metavar="IF",
                      help="interface to scan (repeatable; default: [discovery] interfaces)")
    disc.add_argument("--once", action="store_true", help="one pass, then exit")
    devs = add("devices", _readable_store("devices", cmd_devices),
               "print the devices discovery has recorded")
    devs.add_argument("--json", action="store_true", help="one JSON record per device")
    pres = add("presence", _readable_store("presence", cmd_presence),
               "print presence windows (start, last_seen, end): when a device was here")
    pres.add_argument("mac", nargs="?", help="only this device")
    pres.add_argument("--since", type=epoch, default=0.0, metavar="EPOCH",
                      help="windows still going at or after this time")
    pres.add_argument("--at", type=epoch, metavar="EPOCH",
                      help="instead: the devices that were here at this time")
    known = add("known", _readable_store("known", cmd_known),
                "list, set or remove known devices (a named MAC raises no new_device event)")
    known.add_argument("action", choices=("list", "set", "remove"))
    known.add_argument("mac", nargs="?", help="the device's MAC address (set, remove)")
    known.add_argument("--name", help="a name to show for it")
    known.add_argument("--trusted", action="store_true", help="mark it trusted")
