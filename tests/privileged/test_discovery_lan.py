"""LAN discovery against a real test LAN: namespaces on a bridge, real responders, real packets.

The LAN (tests/support/lan.py) lives entirely in network namespaces named ``nwd-*``: a switch
namespace holding the bridge, five devices and the scanner. The scanner runs inside its own
namespace (`ip netns exec nwd-scan netwarden scan ...`), so no probe can reach the VM's network.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.lan import REPO, Lan
from tests.support.units import (
    UNITS_DIR, allowed_syscalls, sandbox_prefix, strace_prefix, traced_syscalls,
)

SCAN_IF = "nwd-scane"
PORTS = "22,80,445,631,5000,9100,5301"
DEVICES = {
    # key: (mac, last octet, responders)
    "d1": ("b8:27:eb:12:34:56", 11, ["--tcp", "22,80", "--mdns", "_http._tcp:pi-web:80",
                                     "--mdns", "_ssh._tcp:raspi:22", "--hostname", "raspi"]),
    "d2": ("00:17:88:01:02:03", 12, ["--ssdp", "Hue Bridge|Signify|BSB002|"
                                     "urn:schemas-upnp-org:device:Basic:1"]),
    "d3": ("3c:d9:2b:00:00:13", 13, ["--tcp", "631,9100", "--mdns",
                                     "_ipp._tcp:Office Printer:631", "--hostname", "hp-office"]),
    "d4": ("da:a1:19:00:00:14", 14, []),            # a phone with a randomised MAC: no services
    "d5": ("00:11:32:aa:bb:15", 15, ["--tcp", "445,5000", "--netbios", "NAS01/HOME"]),
}
NO_ROOT = ["setpriv", "--securebits=+noroot,+noroot_locked,+no_setuid_fixup,"
           "+no_setuid_fixup_locked"]


@pytest.fixture(scope="module")
def lan() -> Iterator[Lan]:
    network = Lan("nwd-", "10.78.0")
    network.create()
    try:
        network.add_host("scan", "02:00:5e:10:00:02", 2)
        for key, (mac, octet, _services) in DEVICES.items():
            network.add_host(key, mac, octet)
        for key, (_mac, octet, services) in DEVICES.items():
            if services:
                network.start_host_services(key, "--ip", f"10.78.0.{octet}", *services)
        yield network
    finally:
        network.delete()


def in_scanner(*args: str, prefix: tuple[str, ...] = (), timeout: float = 120,
               ) -> subprocess.CompletedProcess[str]:
    command = ["ip", "netns", "exec", "nwd-scan", *prefix, sys.executable, "-m", "netwarden",
               *args]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=REPO)


def scan_json(*args: str, prefix: tuple[str, ...] = ()) -> dict:
    done = in_scanner("scan", "--interface", SCAN_IF, "--json", *args, prefix=prefix)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def by_mac(result: dict) -> dict[str, dict]:
    return {d["mac"]: d for d in result["devices"]}


def test_scan_finds_exactly_the_lan_devices(lan: Lan):
    result = scan_json("--ports", PORTS)
    statuses = {m["name"]: m["status"] for m in result["methods"]}
    assert statuses == dict.fromkeys(
        ["neighbours", "arp", "icmp", "mdns", "ssdp", "netbios", "tcp"], "ran")
    assert result["subnets"] == ["10.78.0.0/24"] and result["unresolved"] == []
    devices = by_mac(result)
    assert set(devices) == {mac for mac, _o, _s in DEVICES.values()}
    for mac, octet, _services in DEVICES.values():
        assert devices[mac]["ip"] == f"10.78.0.{octet}"
        assert f"10.78.0.{octet}" in devices[mac]["ips"]
        # IPv6: only this device's own link-local address (from the all-nodes echo).
        assert all(ip.startswith("fe80::") for ip in devices[mac]["ips"][1:])

    pi = devices["b8:27:eb:12:34:56"]
    assert pi["vendor"] == "Raspberry Pi Foundation" and pi["randomized"] is False
    assert pi["names"] == [{"name": "raspi.local", "method": "mdns"}]
    assert {(s["service"], s["port"], s["instance"]) for s in pi["services"]} == {
        ("_http._tcp", 80, "pi-web"), ("_ssh._tcp", 22, "raspi")}
    assert pi["open_ports"] == [22, 80]
    assert pi["device_type"] == "single-board computer"
    assert "vendor Raspberry Pi Foundation" in pi["type_reasons"]

    hue = devices["00:17:88:01:02:03"]
    assert hue["vendor"] == "Philips Lighting BV"
    assert hue["names"] == [{"name": "Hue Bridge", "method": "ssdp"}]
    (upnp,) = hue["services"]
    assert (upnp["service"], upnp["instance"], upnp["manufacturer"], upnp["model"],
            upnp["port"]) == ("urn:schemas-upnp-org:device:Basic:1", "Hue Bridge", "Signify",
                              "BSB002", 80)
    assert upnp["location"] == "http://10.78.0.12:80/description.xml"
    assert hue["open_ports"] == [80]               # the description server
    assert hue["device_type"] == "smart lighting"

    printer = devices["3c:d9:2b:00:00:13"]
    assert printer["vendor"] == "Hewlett Packard"
    assert printer["names"] == [{"name": "hp-office.local", "method": "mdns"}]
    assert [(s["service"], s["port"], s["instance"]) for s in printer["services"]] == [
        ("_ipp._tcp", 631, "Office Printer")]
    assert printer["open_ports"] == [631, 9100] and printer["device_type"] == "printer"

    phone = devices["da:a1:19:00:00:14"]
    assert phone["randomized"] is True and phone["vendor"] == ""
    assert phone["names"] == [] and phone["services"] == [] and phone["open_ports"] == []
    assert phone["device_type"] == "phone or laptop"

    nas = devices["00:11:32:aa:bb:15"]
    assert nas["vendor"] == "Synology Incorporated"
    assert nas["names"] == [{"name": "NAS01", "method": "netbios"}]
    assert nas["services"][0]["workgroup"] == "HOME"
    assert nas["open_ports"] == [445, 5000] and nas["device_type"] == "network storage"


def test_scan_prints_a_table(lan: Lan):
    done = in_scanner("scan", "--interface", SCAN_IF, "--methods", "arp", "--subnet",
                      "10.78.0.0/28")
    assert done.returncode == 0, done.stderr
    assert "b8:27:eb:12:34:56 10.78.0.11" in done.stdout
    # /28 holds .1-.14: the NAS at .15 is outside the sweep.
    assert "4 devices on nwd-scane (10.78.0.0/28)" in done.stdout
    assert DEVICES["d5"][0] not in done.stdout
    assert "arp" in done.stdout and "13 requests, 4 replies" in done.stdout


@pytest.mark.parametrize("args, message", [
    (("--subnet", "10.78.0.300/24"), "'10.78.0.300/24' is not a valid CIDR subnet"),
    (("--subnet", "10.78.0.0/16"), "subnet 10.78.0.0/16 has 65536 addresses, more than the "
                                   "limit of 1024"),
    (("--subnet", "10.79.0.0/24"), "subnet 10.79.0.0/24 is not on nwd-scane"),
    (("--ports", "80,http"), "--ports: 'http' is not a port"),
])
def test_bad_input_is_refused(lan: Lan, args: tuple[str, ...], message: str):
    done = in_scanner("scan", "--interface", SCAN_IF, *args)
    assert done.returncode == 64
    assert done.stdout == ""
    assert done.stderr.strip() == f"netwarden scan: {message}" or message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_missing_interface_is_refused(lan: Lan):
    done = in_scanner("scan", "--interface", "nwd-nosuch")
    assert done.returncode == 64
    assert done.stderr.startswith("netwarden scan: no interface named 'nwd-nosuch' "
                                  "(this host has: lo, nwd-scane)")


def test_without_cap_net_raw_raw_methods_say_why_and_the_rest_runs(lan: Lan):
    no_caps = (*NO_ROOT, "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all", "--")
    result = scan_json("--ports", PORTS, prefix=no_caps)
    methods = {m["name"]: m for m in result["methods"]}
    assert methods["arp"]["status"] == "unavailable"
    assert "needs CAP_NET_RAW" in methods["arp"]["reason"]
    # A fresh namespace allows no ping sockets (ping_group_range "1 0"): ICMP says so.
    assert methods["icmp"]["status"] == "unavailable"
    assert "ping_group_range = 1 0" in methods["icmp"]["reason"]
    assert "CAP_NET_RAW" in methods["icmp"]["reason"]
    for name in ("neighbours", "mdns", "ssdp", "netbios", "tcp"):
        assert methods[name]["status"] == "ran", methods[name]
    # mDNS, SSDP and NetBIOS still name their devices, with MACs from the neighbour table.
    devices = by_mac(result)
    assert devices["b8:27:eb:12:34:56"]["names"][0]["name"] == "raspi.local"
    assert devices["00:17:88:01:02:03"]["names"][0]["name"] == "Hue Bridge"


def test_with_only_cap_net_raw_the_arp_sweep_runs(lan: Lan):
    raw_only = (*NO_ROOT, "--bounding-set=-all,+net_raw", "--inh-caps=-all,+net_raw",
                "--ambient-caps=-all,+net_raw", "--")
    result = scan_json("--methods", "arp", prefix=raw_only)
    assert result["methods"][0]["status"] == "ran"
    assert set(by_mac(result)) == {mac for mac, _o, _s in DEVICES.values()}


def test_scan_with_exactly_the_discovery_units_privileges(lan: Lan):
    """systemd/netwarden-discovery.service's user (nobody stands in for netwarden), CAP_NET_RAW
    as its only (ambient) capability, no_new_privs and MemoryDenyWriteExecute: every method
    runs, the ARP sweep included, making only the system calls the unit's SystemCallFilter
    allows (strace records them)."""
    unit = UNITS_DIR / "netwarden-discovery.service"
    with tempfile.TemporaryDirectory(prefix="nwd-strace-") as directory:
        os.chmod(directory, 0o777)
        trace = Path(directory) / "scan.strace"
        prefix = (*sandbox_prefix(unit, account=pwd.getpwnam("nobody")), *strace_prefix(trace))
        result = scan_json("--ports", PORTS, prefix=prefix)
        used = traced_syscalls(trace)
    methods = {m["name"]: m["status"] for m in result["methods"]}
    assert methods["arp"] == "ran" and methods["mdns"] == "ran", methods
    assert set(by_mac(result)) >= {mac for mac, _o, _s in DEVICES.values()}
    assert not used - allowed_syscalls(unit), sorted(used - allowed_syscalls(unit))


def _windows(db: Path, mac: str) -> list[tuple[float, float, float | None]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT p.start, p.last_seen, p.end FROM presence p JOIN devices d "
                            "ON d.id = p.device_id WHERE d.mac = ? ORDER BY p.start",
                            (mac,)).fetchall()
    except sqlite3.OperationalError:      # not created yet
        return []
    finally:
        conn.close()


def _wait_for(condition, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _events(db: Path, config: Path) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-m", "netwarden", "events", "--config", str(config), "--db", str(db)],
        capture_output=True, text=True, cwd=REPO, check=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_presence_windows_and_device_events(lan: Lan):
    """The service: a device leaves and returns (two windows); each unknown MAC is announced
    once, devices known from the config or the CLI never; a new open port is a change."""
    phone_mac, known_mac, cli_known, nas_mac = (DEVICES[k][0] for k in ("d4", "d1", "d3", "d5"))
    with tempfile.TemporaryDirectory(prefix="nwd-presence-") as tmp:
        db, config = Path(tmp) / "nw.db", Path(tmp) / "config.toml"
        config.write_text(
            '[store]\ngroup = ""\nowner = ""\n[discovery]\nmethods = ["arp", "tcp"]\n'
            'ports = [5301]\ninterval_s = 1\npresence_gap_s = 3\nreply_wait_s = 0.3\n'
            'probe_rate = 2000\ntcp_timeout_s = 0.3\n'
            f'known = [{{ mac = "{known_mac}", name = "kitchen pi", trusted = true }}]\n')
        env = dict(os.environ, PYTHONPATH=str(REPO))
        named = in_scanner("known", "set", cli_known, "--name", "printer", "--config",
                           str(config), "--db", str(db))
        assert named.returncode == 0, named.stderr
        service = subprocess.Popen(
            ["ip", "netns", "exec", "nwd-scan", sys.executable, "-m", "netwarden", "discovery",
             "--config", str(config), "--db", str(db), "--interface", SCAN_IF],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
        try:
            _wait_for(lambda: len(_windows(db, phone_mac)) == 1, 30, "the phone's window")
            lan.set_link("d4", up=False)
            _wait_for(lambda: _windows(db, phone_mac)[-1][2] is not None, 30,
                      "the phone's window to close")
            lan.set_link("d4", up=True)
            _wait_for(lambda: len(_windows(db, phone_mac)) == 2, 30, "a second window")
            listener = lan.start_host_services("d5", "--ip", "10.78.0.15", "--tcp", "5301")
            _wait_for(lambda: any(e["kind"] == "device_changed" for e in _events(db, config)),
                      30, "a device_changed event")
            listener.kill()
            _wait_for(lambda: sum(e["kind"] == "device_changed" for e in _events(db, config))
                      == 2, 30, "the port's closing")
            time.sleep(1.5)   # one more pass: nothing new may be announced
        finally:
            service.send_signal(signal.SIGTERM)
            _out, err = service.communicate(timeout=30)
        assert service.returncode == 0, err

        first, second = _windows(db, phone_mac)
        assert first[2] is not None and first[2] == first[1]       # closed at its last sighting
        assert second[0] - first[1] > 3                            # the gap lies between
        assert second[2] is None                                   # still open
        others = _windows(db, DEVICES["d2"][0])
        assert len(others) == 1 and others[0][2] is None           # never left: one window

        records = _events(db, config)
        announced = sorted(r["mac"] for r in records if r["kind"] == "new_device")
        # Every unknown MAC exactly once (the phone's return is not new); known ones never.
        assert announced == sorted(mac for key, (mac, _o, _s) in DEVICES.items()
                                   if key not in ("d1", "d3"))
        changed = [r for r in records if r["kind"] == "device_changed"]
        assert changed[0] == {"time": changed[0]["time"], "kind": "device_changed",
                              "mac": nas_mac, "ip": "10.78.0.15",
                              "vendor": "Synology Incorporated", "name": "",
                              "added_ports": [5301], "removed_ports": []}
        # Its listener was killed: the port closing is a change too, and the last one.
        assert len(changed) == 2
        assert (changed[1]["added_ports"], changed[1]["removed_ports"]) == ([], [5301])
        phone = next(r for r in records if r["mac"] == phone_mac)
        assert phone == {"time": phone["time"], "kind": "new_device", "mac": phone_mac,
                         "ip": "10.78.0.14", "vendor": "", "name": "", "interface": SCAN_IF,
                         "randomized": True}


def test_the_test_lan_is_closed(lan: Lan):
    """Nothing of the LAN can reach the VM's network: the hosts have on-link routes only
    and the switch namespace holds only the bridge and the hosts' ports."""
    for host in lan.hosts.values():
        routes = subprocess.run([*host.exec_prefix(), "ip", "-j", "route", "show", "table",
                                 "all"], capture_output=True, text=True, check=True)
        for route in json.loads(routes.stdout):
            assert route.get("gateway") is None, route
            assert route["dst"] != "default", route
            assert route.get("dev") in (host.ifname, "lo"), route
    links = subprocess.run(["ip", "netns", "exec", lan.switch, "ip", "-j", "link"],
                           capture_output=True, text=True, check=True)
    names = {link["ifname"] for link in json.loads(links.stdout)}
    assert names == {"lo", lan.bridge} | {f"nwd-{key}p" for key in lan.hosts}


def test_scan_record_writes_the_pass_to_the_store(lan: Lan):
    with tempfile.TemporaryDirectory(prefix="nwd-record-") as tmp:
        db, config = Path(tmp) / "nw.db", Path(tmp) / "config.toml"
        config.write_text('[store]\ngroup = ""\nowner = ""\n')
        done = in_scanner("scan", "--interface", SCAN_IF, "--methods", "arp", "--record",
                          "--config", str(config), "--db", str(db))
        assert done.returncode == 0, done.stderr
        listed = in_scanner("devices", "--json", "--config", str(config), "--db", str(db))
        rows = [json.loads(line) for line in listed.stdout.splitlines()]
        assert {r["mac"] for r in rows} == {mac for mac, _o, _s in DEVICES.values()}
        assert all(r["present"] for r in rows)
        assert len([e for e in _events(db, config) if e["kind"] == "new_device"]) == 5
