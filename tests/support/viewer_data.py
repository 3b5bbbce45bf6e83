"""A store with known traffic for the viewers' tests, written by the real SqliteWriter.

Times are relative to `now` so a viewer running on the real clock sees them in its ranges:
the last hour holds curl, firefox, sshd and a container's nginx; apt is two days old and a
previous curl (another sha256) three days old, with an exe_modified event between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from netwarden.model import Event, EventKind, Executable, FlowRow, ProgramIdentity
from netwarden.store.sqlite_writer import SqliteWriter

CURL = Executable("/usr/bin/curl", "c" * 64)
OLD_CURL = Executable("/usr/bin/curl", "0" * 64)
FIREFOX = Executable("/usr/lib/firefox/firefox", "f" * 64)
SSHD = Executable("/usr/sbin/sshd", "5" * 64)
APT = Executable("/usr/bin/apt", "a" * 64)
NGINX = Executable("/usr/sbin/nginx", "9" * 64)
BASH = Executable("/usr/bin/bash", "b" * 64)
SYSTEMD = Executable("/usr/lib/systemd/systemd", "d" * 64)

CURL_P = ProgramIdentity(CURL, "curl", "curl https://example.org", 1000, parent=BASH)
OLD_CURL_P = ProgramIdentity(OLD_CURL, "curl", "curl http://old", 1000, parent=BASH)
FIREFOX_P = ProgramIdentity(FIREFOX, "firefox", "firefox", 1000, parent=SYSTEMD)
SSHD_P = ProgramIdentity(SSHD, "sshd", "sshd: alice", 0, parent=SYSTEMD)
APT_P = ProgramIdentity(APT, "apt", "apt update", 0, parent=BASH)
NGINX_P = ProgramIdentity(NGINX, "nginx", "nginx: worker", 33, parent=SYSTEMD,
                          container="web1")


def flow(time: int, program: ProgramIdentity, raddr: str, rport: int, sent: int, recv: int,
         lport: int = 40000, protocol: str = "tcp", domain: str = "") -> FlowRow:
    return FlowRow(time=time, program=program, family=2, protocol=protocol,
                   ip_protocol=6 if protocol == "tcp" else 17, laddr="10.0.0.2", lport=lport,
                   raddr=raddr, rport=rport, sent=sent, recv=recv, netns=4026531840,
                   domain=domain)


@dataclass(frozen=True)
class Seeded:
    path: Path
    now: int


def seed_store(path: Path, now: int, host: str = "testhost") -> Seeded:
    writer = SqliteWriter(path, now - 4 * 86400, group=None, host=host)
    day = 86400
    windows = [
        (now - 3 * day, [flow(now - 3 * day, OLD_CURL_P, "198.51.100.7", 80, 300, 4000)], []),
        (now - 2 * day, [flow(now - 2 * day, APT_P, "151.101.0.1", 80, 2000, 9_000_000)], []),
        (now - 1200, [flow(now - 1200, FIREFOX_P, "142.250.1.1", 443, 20000, 1_000_000,
                           domain="www.google.com")], []),
        (now - 600, [flow(now - 600, CURL_P, "93.184.216.34", 443, 1000, 50000,
                          domain="example.org"),
                     flow(now - 600, CURL_P, "8.8.8.8", 53, 60, 120, protocol="udp")], []),
        (now - 300, [flow(now - 300, FIREFOX_P, "142.250.1.1", 443, 30000, 2_000_000,
                          domain="www.google.com"),
                     flow(now - 300, NGINX_P, "203.0.113.9", 51500, 700000, 9000, lport=80)],
         []),
        (now - 100, [flow(now - 100, SSHD_P, "10.0.0.5", 51000, 400000, 30000, lport=22)], []),
    ]
    for time, rows, events in windows:
        writer.write(rows, events, [], time)
    # the event the sensor writes for a changed binary
    writer.write([], [Event(now - 2.5 * day + 1, EventKind.EXE_MODIFIED, (
        ("name", "curl"), ("new_sha256", CURL.sha256), ("old_sha256", OLD_CURL.sha256),
        ("path", CURL.path)))], [], now)
    writer.close()
    return Seeded(path, now)



STEAM = Executable("/home/alice/.local/share/Steam/ubuntu12_32/steam-runtime/usr/bin/"
                   "steamwebhelper", "e" * 64)
STEAM_P = ProgramIdentity(STEAM, "steamwebhelper", "steamwebhelper", 1000, parent=SYSTEMD)
#: Public addresses whose country the embedded data know: (address, ISO code).
FRESH_PEERS = (("8.8.8.8", "US"), ("193.0.6.139", "NL"), ("1.0.16.1", "JP"))


def seed_fresh_store(path: Path, now: int, minutes: int = 4) -> Seeded:
    """A new install's store: `minutes` of traffic in 10-second windows, ending now, with a
    quiet stretch in the middle (bins without traffic) and a program with a long path."""
    writer = SqliteWriter(path, now - minutes * 60, group=None, host="testhost")
    start = now - minutes * 60
    for step, time in enumerate(range(start, now, 10)):
        if minutes * 6 // 3 <= step < minutes * 6 // 2:
            continue                     # nobody talked for a while
        rows = [flow(time, FIREFOX_P, FRESH_PEERS[0][0], 443, 4000 + 100 * step,
                     300_000 + 20_000 * (step % 7), domain="www.google.com"),
                flow(time, STEAM_P, FRESH_PEERS[1][0], 443, 2000, 120_000 + 9000 * (step % 5))]
        if step % 4 == 0:
            rows.append(flow(time, CURL_P, FRESH_PEERS[2][0], 443, 800, 40_000,
                             domain="example.org"))
        writer.write(rows, [], [], time)
    writer.close()
    return Seeded(path, now)
