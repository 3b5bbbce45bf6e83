"""netwarden's configuration: one typed, frozen dataclass per TOML section.

``load_config(path)`` reads and validates the file once. Every problem (bad TOML, an unknown
section or key, a value of the wrong type or out of range) raises :class:`ConfigError`, whose
message names the file, the key, the value and what is allowed. The CLI turns it into one line
on stderr and exit status 78 (EX_CONFIG), which the systemd unit lists in
RestartPreventExitStatus: a typo stops the service once, it never crash-loops.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netwarden.model.discovery import KnownDevice
from netwarden.model.schedule import parse_schedule
from netwarden.model.watch import WatchTarget, parse_probe
from netwarden.report_schedule import WEEKDAYS, ScheduleError, parse_clock

SHA256_RE = re.compile(r"[0-9a-f]{64}")

DEFAULT_CONFIG_PATH = Path("/etc/netwarden/config.toml")
DEFAULT_DB_PATH = Path("/var/lib/netwarden/netwarden.db")
#: Where the sensor pins its byte counters' maps and links (docs/pinning.md).
DEFAULT_PIN_ROOT = "/sys/fs/bpf/netwarden"


class ConfigError(ValueError):
    def __init__(self, source: str, key: str, value: object, allowed: str) -> None:
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key} = {value!r}: {allowed}")
        self.key = key
        self.value = value
        self.allowed = allowed


def _setting(default: Any, *, minimum: float | None = None, maximum: float | None = None,
             choices: tuple[str, ...] = (), power_of_two: bool = False, doc: str = "",
             convert: Callable[[str, str, object], object] | None = None) -> Any:
    """``convert(source, key, value)`` validates settings that are not plain scalars (lists)."""
    return field(default=default, metadata={
        "minimum": minimum, "maximum": maximum, "choices": choices,
        "power_of_two": power_of_two, "doc": doc, "convert": convert})


def _items(check: Callable[[object], str | None]) -> Callable[[str, str, object],
                                                              tuple[Any, ...]]:
    """A list whose items ``check`` validates (it says what is wrong with an item)."""
    def convert(source: str, key: str, value: object) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise ConfigError(source, key, value, "must be a list, e.g. [] or [\"a\", \"b\"]")
        for item in value:
            problem = check(item)
            if problem:
                raise ConfigError(source, key, value, f"item {item!r} {problem}")
        return tuple(value)
    return convert


def _pin_root(source: str, key: str, value: object) -> str:
    if not isinstance(value, str) or (value and not value.startswith("/")):
        raise ConfigError(source, key, value, "must be an absolute path in a bpf filesystem "
                          "(e.g. \"/sys/fs/bpf/netwarden\") or \"\" for no pinning")
    return value.rstrip("/") if value != "/" else value


def _check_cidr(item: object) -> str | None:
    if not isinstance(item, str):
        return "must be a string like \"10.0.0.0/8\" or \"fd00::/8\""
    try:
        ipaddress.ip_network(item, strict=False)
    except ValueError:
        return "is not a CIDR subnet like \"10.0.0.0/8\" or \"fd00::/8\""
    return None


def _check_port(item: object) -> str | None:
    if isinstance(item, bool) or not isinstance(item, int) or not 0 < item < 65536:
        return "must be a port number from 1 to 65535"
    return None


def _check_domain(item: object) -> str | None:
    if not isinstance(item, str) or not item.strip(".") or " " in item:
        return "must be a domain name like \"example.com\""
    return None


def _check_executable(item: object) -> str | None:
    if isinstance(item, str) and (item.startswith("/") or SHA256_RE.fullmatch(item)):
        return None
    return "must be an absolute path or a sha256 (64 hex digits)"


@dataclass(frozen=True)
class SensorConfig:
    write_interval_s: int = _setting(
        10, minimum=1, maximum=3600, doc="seconds of traffic summed into one stored row")
    drain_interval_s: float = _setting(
        1.0, minimum=0.1, maximum=60, doc="how often the kernel's counters are read")
    flow_table_entries: int = _setting(
        16384, minimum=256, maximum=1 << 22,
        doc="distinct flows the kernel can hold between two drains")
    proc_ringbuf_kib: int = _setting(
        4096, minimum=64, maximum=1 << 20, power_of_two=True,
        doc="size of the process-event ring buffer")
    hook_set: str = _setting(
        "auto", choices=("auto", "tracepoint", "fexit"),
        doc="which kernel hooks count bytes; auto picks the best this kernel has")
    bpf_mode: str = _setting(
        "auto", choices=("auto", "full", "compat"),
        doc="compat: the BPF programs avoid features of kernels 5.11/5.12 (socket state in "
            "a hash map, no socket counters); auto probes the kernel")
    packet_hooks: str = _setting(
        "auto", choices=("auto", "always"),
        doc="auto: read raw/ping destinations and DNS answers from the system call and "
            "attach the datagram-source hook only while a raw or ping socket exists (fewer "
            "programs per packet); always: per-packet hooks for the sensor's lifetime")
    track_packet_sockets: bool = _setting(True, doc="count AF_PACKET sockets too")
    silent_zero_after_s: float = _setting(
        120.0, minimum=0, maximum=86400,
        doc="alarm when interfaces move bytes but none are attributed for this long (0: off)")
    silent_zero_min_bytes: int = _setting(
        1 << 20, minimum=1, maximum=1 << 40,
        doc="bytes the interfaces must move in that time before silence counts")
    record_every_exec: bool = _setting(
        False, doc="record every exec (the execs table), not only programs that network")
    exit_grace_s: float = _setting(
        60.0, minimum=0, maximum=86400, doc="how long an exited process is remembered")
    pin_root: str = _setting(
        DEFAULT_PIN_ROOT, convert=_pin_root,
        doc="bpffs directory where the byte counters' maps and links are pinned, so counting "
            "goes on across a sensor restart or crash and nothing drained is lost before it "
            "is stored; empty: no pinning (counting stops with the sensor)")


@dataclass(frozen=True)
class StoreConfig:
    path: str = _setting(str(DEFAULT_DB_PATH), doc="the SQLite database file")
    group: str = _setting("netwarden", doc="group allowed to read the database")
    retention_days: int = _setting(
        0, minimum=0, maximum=36500,
        doc="delete rows older than this many days (0 keeps everything)")
    owner: str = _setting(
        "netwarden", doc="user that owns the database and may write it (the discovery "
        "service runs as it); root keeps ownership when no such user exists")


DISCOVERY_METHODS = ("neighbours", "arp", "icmp", "mdns", "ssdp", "netbios", "tcp")
DEFAULT_SCAN_PORTS = (21, 22, 23, 53, 80, 139, 443, 445, 515, 548, 554, 631, 1883, 3389,
                      5000, 8080, 8443, 9100)
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def normalise_mac(text: str) -> str | None:
    """'B8-27-EB-12-34-56' -> 'b8:27:eb:12:34:56'; None when it is not a MAC address."""
    mac = text.strip().lower().replace("-", ":")
    return mac if _MAC_RE.match(mac) else None


def _list_of(kind: type, what: str) -> Callable[[str, str, object], tuple[Any, ...]]:
    def convert(source: str, key: str, value: object) -> tuple[Any, ...]:
        if not isinstance(value, list) or not all(
                isinstance(v, kind) and not isinstance(v, bool) for v in value):
            raise ConfigError(source, key, value, f"must be a list of {what}")
        return tuple(value)
    return convert


def _subnets(source: str, key: str, value: object) -> tuple[str, ...]:
    items = _list_of(str, "CIDR strings like \"192.168.1.0/24\"")(source, key, value)
    for item in items:
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(source, key, item, "is not a CIDR subnet like "
                              "\"192.168.1.0/24\"") from None
        if network.version != 4:
            raise ConfigError(source, key, item, "only IPv4 subnets can be swept (IPv6 "
                              "neighbours are found from the neighbour table)")
    return items


def _ports(source: str, key: str, value: object) -> tuple[int, ...]:
    items = _list_of(int, "TCP port numbers")(source, key, value)
    for port in items:
        if not 1 <= port <= 65535:
            raise ConfigError(source, key, port, "a port must be from 1 to 65535")
    return tuple(sorted(set(items)))


def _methods(source: str, key: str, value: object) -> tuple[str, ...]:
    items = _list_of(str, "method names")(source, key, value)
    for item in items:
        if item not in DISCOVERY_METHODS:
            raise ConfigError(source, key, item, "must be one of " + ", ".join(
                repr(m) for m in DISCOVERY_METHODS))
    return items


def _known_devices(source: str, key: str, value: object) -> tuple[KnownDevice, ...]:
    allowed = "must be a list of tables like { mac = \"b8:27:eb:12:34:56\", name = " \
              "\"kitchen pi\", trusted = true }"
    if not isinstance(value, list):
        raise ConfigError(source, key, value, allowed)
    devices = []
    for item in value:
        if not isinstance(item, dict) or not set(item) <= {"mac", "name", "trusted"}:
            raise ConfigError(source, key, item, allowed)
        mac = normalise_mac(str(item.get("mac", "")))
        name, trusted = item.get("name", ""), item.get("trusted", False)
        if mac is None or not isinstance(name, str) or not isinstance(trusted, bool):
            raise ConfigError(source, key, item, allowed)
        devices.append(KnownDevice(mac, name, trusted))
    return tuple(devices)


@dataclass(frozen=True)
class DiscoveryConfig:
    interfaces: tuple[str, ...] = _setting(
        (), convert=_list_of(str, "interface names"),
        doc="interfaces to scan; empty: the interface of the default route")
    subnets: tuple[str, ...] = _setting(
        (), convert=_subnets,
        doc="IPv4 subnets to sweep; empty: each scanned interface's own subnets")
    methods: tuple[str, ...] = _setting(
        DISCOVERY_METHODS, convert=_methods, doc="discovery methods to run")
    ports: tuple[int, ...] = _setting(
        DEFAULT_SCAN_PORTS, convert=_ports, doc="TCP ports probed on each live device")
    interval_s: int = _setting(300, minimum=1, maximum=86400,
                               doc="seconds between two discovery passes")
    presence_gap_s: int = _setting(
        900, minimum=1, maximum=7 * 86400,
        doc="a presence window closes when a device is unseen this long")
    max_subnet_size: int = _setting(
        1024, minimum=1, maximum=1 << 20, doc="largest subnet (addresses) a sweep accepts")
    probe_rate: int = _setting(
        500, minimum=1, maximum=100000, doc="ARP/ICMP probes sent per second")
    reply_wait_s: float = _setting(
        1.0, minimum=0.05, maximum=30, doc="how long a sweep waits for late replies")
    tcp_concurrency: int = _setting(64, minimum=1, maximum=4096,
                                    doc="TCP connects in flight at once")
    tcp_rate: int = _setting(200, minimum=1, maximum=100000,
                             doc="TCP connects started per second")
    tcp_timeout_s: float = _setting(1.0, minimum=0.05, maximum=30,
                                    doc="a port that has not answered by then is not open")
    listen_s: float = _setting(2.0, minimum=0.1, maximum=60,
                               doc="how long mDNS, SSDP and NetBIOS wait for answers")
    known: tuple[KnownDevice, ...] = _setting(
        (), convert=_known_devices,
        doc="known devices: [{ mac = \"..\", name = \"..\", trusted = true }]")


_TARGET_KEYS = ("name", "probe", "interval_s", "timeout_s", "schedule", "expect_status",
                "group", "verify_tls")
_TARGET_FORM = ("must be a table like [[watch.target]] name = \"gateway\" probe = "
                "\"icmp:192.168.1.1\" (keys: " + ", ".join(_TARGET_KEYS) + ")")


def _number(source: str, key: str, item: dict[str, Any], name: str, low: float,
            high: float) -> float:
    """A per-target number (0: the section's default)."""
    value = item.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not (value == 0 or low <= value <= high):
        raise ConfigError(source, f"{key} {name}", value, f"must be a number from {low} to "
                          f"{high} (or left out for the [watch] default)")
    return float(value)


def _watch_target(source: str, key: str, item: object) -> WatchTarget:
    if not isinstance(item, dict) or not set(item) <= set(_TARGET_KEYS):
        raise ConfigError(source, key, item, _TARGET_FORM)
    name, probe_text = item.get("name"), item.get("probe")
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ConfigError(source, f"{key} name", name, "must be a non-empty name without "
                          "surrounding spaces")
    key = f"{key} {name!r}"
    try:
        probe = parse_probe(probe_text) if isinstance(probe_text, str) else None
    except ValueError as exc:
        raise ConfigError(source, f"{key} probe", probe_text, str(exc)) from None
    if probe is None:
        raise ConfigError(source, f"{key} probe", probe_text, "must be a string")
    schedule, group = item.get("schedule", "always"), item.get("group", "")
    try:
        parse_schedule(schedule if isinstance(schedule, str) else "")
    except ValueError as exc:   # model.schedule.ScheduleError
        raise ConfigError(source, f"{key} schedule", schedule, str(exc)) from None
    status = item.get("expect_status", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ConfigError(source, f"{key} expect_status", status,
                          "must be an HTTP status from 100 to 599")
    if not isinstance(group, str):
        raise ConfigError(source, f"{key} group", group, "must be a string (a group name)")
    verify = item.get("verify_tls", True)
    if not isinstance(verify, bool):
        raise ConfigError(source, f"{key} verify_tls", verify, "must be true or false")
    return WatchTarget(name, probe, _number(source, key, item, "interval_s", 0.1, 86400),
                       _number(source, key, item, "timeout_s", 0.05, 300), schedule, status,
                       group.strip(), verify)


def _watch_targets(source: str, key: str, value: object) -> tuple[WatchTarget, ...]:
    if not isinstance(value, list):
        raise ConfigError(source, key, value, _TARGET_FORM)
    targets = tuple(_watch_target(source, key, item) for item in value)
    names = [t.name for t in targets]
    for target in targets:
        if names.count(target.name) > 1:
            raise ConfigError(source, f"{key} name", target.name, "is used twice; names "
                              "must be unique")
        if target.group in names:
            raise ConfigError(source, f"{key} {target.name!r} group", target.group,
                              "is also a target's name; a group needs a name of its own")
    return targets


@dataclass(frozen=True)
class WatchConfig:
    """The connectivity watch (run by `netwarden discovery`, or `netwarden watch run`)."""

    interval_s: float = _setting(60.0, minimum=0.1, maximum=86400,
                                 doc="seconds between two probes of a target")
    timeout_s: float = _setting(5.0, minimum=0.05, maximum=300,
                                doc="a probe not answered by then failed")
    fail_after: int = _setting(3, minimum=1, maximum=1000,
                               doc="consecutive failures before a target is down")
    recover_after: int = _setting(2, minimum=1, maximum=1000,
                                  doc="consecutive successes before it is up again")
    sample_days: int = _setting(30, minimum=1, maximum=3650,
                                doc="days of latency samples kept (windows are kept)")
    target: tuple[WatchTarget, ...] = _setting(
        (), convert=_watch_targets,
        doc="targets: [[watch.target]] name, probe, interval_s, timeout_s, schedule, "
            "expect_status, group, verify_tls (see docs/watch.md)")

    def targets(self) -> tuple[WatchTarget, ...]:
        """The targets with the section's interval and timeout where they set none."""
        return tuple(dataclasses.replace(
            t, interval_s=t.interval_s or self.interval_s,
            timeout_s=t.timeout_s or self.timeout_s) for t in self.target)


@dataclass(frozen=True)
class IgnoreConfig:
    """Traffic matching any rule is not stored as flows (its executable is still recorded)."""

    executables: tuple[str, ...] = _setting(
        (), convert=_items(_check_executable), doc="absolute paths or sha256 values")
    domains: tuple[str, ...] = _setting(
        (), convert=_items(_check_domain), doc="domain suffixes: \"example.com\" also matches "
                                          "\"a.example.com\"")
    subnets: tuple[str, ...] = _setting(
        (), convert=_items(_check_cidr), doc="remote addresses in these CIDR subnets")
    ports: tuple[int, ...] = _setting(
        (), convert=_items(_check_port), doc="flows with this local or remote port")


@dataclass(frozen=True)
class ScanConfig:
    """Inbound port-scan detection from kernel signals (bpf/scan.bpf.c, docs/port-scans.md)."""

    enabled: bool = _setting(True, doc="load the scan hooks and raise port_scan events")
    ports: int = _setting(20, minimum=2, maximum=65535,
                          doc="a source touching more than this many local ports ...")
    window_s: float = _setting(60.0, minimum=1, maximum=3600,
                               doc="... within this many seconds is scanning; a scan ends "
                                   "after this long without a probe")
    allow: tuple[str, ...] = _setting(
        (), convert=_items(_check_cidr), doc="sources never reported (CIDR subnets)")
    open_ports: bool = _setting(
        True, doc="also see probes of open TCP ports (a sock_ops program: ~1 us per new "
                  "TCP connection); false: closed ports only")
    report_after_s: float = _setting(
        300.0, minimum=1, maximum=86400,
        doc="a scan still going after this long is reported then, and summarised when it "
            "ends")
    summary_interval_s: float = _setting(
        3600.0, minimum=60, maximum=7 * 86400,
        doc="a reported scan that goes on is summarised at most this often")
    table_entries: int = _setting(
        16384, minimum=1024, maximum=1 << 22,
        doc="kernel table of (source, port, probe) seen within window_s")


@dataclass(frozen=True)
class LogConfig:
    csv_path: str = _setting("", doc="also append every stored flow row to this CSV file "
                                     "(\"\" for none)")
    csv_max_bytes: int = _setting(10 << 20, minimum=4096, maximum=1 << 40,
                                  doc="rotate the CSV file when it grows past this")
    csv_backups: int = _setting(5, minimum=0, maximum=1000,
                                doc="rotated CSV files kept (file.1 is the newest)")


_RANGES = ("minute", "hour", "day", "week", "month", "all")


@dataclass(frozen=True)
class TuiConfig:
    default_range: str = _setting("hour", choices=_RANGES, doc="time range shown first")
    live_interval_s: float = _setting(
        2.0, minimum=0.5, maximum=3600, doc="how often live mode reads the store again")


@dataclass(frozen=True)
class ViewConfig:
    """What both viewers (the TUI and the web page) show alike."""

    units: str = _setting("iec", choices=("iec", "si"),
                          doc="byte units of both viewers' tables and charts: iec (KiB, MiB: "
                              "powers of 1024) or si (kB, MB: powers of 1000)")


@dataclass(frozen=True)
class DashConfig:
    host: str = _setting("127.0.0.1", doc="address the web viewer binds (--host wins)")
    port: int = _setting(5100, minimum=1, maximum=65535, doc="its TCP port (--port wins)")
    token: str = _setting(
        "", doc="bearer token for the page and /api/v1; required to bind beyond loopback")
    geoip_mmdb: str = _setting(
        "", doc="a GeoIP2/GeoLite2 Country or City .mmdb file for the countries chart")
    default_range: str = _setting("hour", choices=_RANGES, doc="time range shown first")
    top_n: int = _setting(10, minimum=1, maximum=100, doc="series shown before 'other'")
    refresh_s: int = _setting(
        10, minimum=0, maximum=3600, doc="seconds between page refreshes; 0 = never")


def listen_address(text: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 address in brackets: [::1]:9771) as (host, port); ValueError says
    what is wrong. The metrics exporter's --listen and [metrics] listen."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError("wants HOST:PORT, e.g. 127.0.0.1:9771 or [::1]:9771")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("an IPv6 address goes in brackets, e.g. [::1]:9771")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is not from 1 to 65535")
    if not host or any(c.isspace() or c in "/[]" for c in host):
        raise ValueError(f"{host!r} is not an address or host name")
    return host, port


def _check_listen(source: str, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(source, key, value, "must be a string HOST:PORT")
    try:
        listen_address(value)
    except ValueError as exc:
        raise ConfigError(source, key, value, str(exc)) from None
    return value


@dataclass(frozen=True)
class MetricsConfig:
    listen: str = _setting("127.0.0.1:9771", convert=_check_listen,
                           doc="where `netwarden metrics` serves /metrics (--listen wins)")
    token: str = _setting(
        "", doc="bearer token `netwarden metrics` requires; needed to listen beyond loopback "
                "(the web viewer's /metrics takes [dash] token)")
    top_n: int = _setting(20, minimum=1, maximum=1000,
                          doc="executables with their own bytes series; the rest are 'other'")


#: The notifier's channels by the name a delivery records.
CHANNEL_NAMES = ("desktop", "webhook", "mqtt", "ntfy")


def _clock_time(source: str, key: str, value: object) -> str:
    try:
        parse_clock(value if isinstance(value, str) else "")
    except ScheduleError:
        raise ConfigError(source, key, value, "must be a local time of day like \"08:00\"") \
            from None
    return str(value)


def _channel_names(source: str, key: str, value: object) -> tuple[str, ...]:
    items = _list_of(str, "channel names")(source, key, value)
    for item in items:
        if item not in CHANNEL_NAMES:
            raise ConfigError(source, key, item, "must be one of " + ", ".join(
                repr(c) for c in CHANNEL_NAMES))
    return items


@dataclass(frozen=True)
class NotifierConfig:
    poll_interval_s: float = _setting(
        1.0, minimum=0.1, maximum=60, doc="how often the notifier reads new events")
    first_run: str = _setting(
        "latest", choices=("latest", "all"),
        doc="on the very first run, skip events older than the notifier (latest) or show all")
    desktop: bool = _setting(
        True, doc="raise desktop notifications (org.freedesktop.Notifications)")
    cooldown_s: float = _setting(
        300.0, minimum=0, maximum=86400,
        doc="seconds before the same program (and kind) may notify again")
    trouble_cooldown_s: float = _setting(
        900.0, minimum=0, maximum=86400,
        doc="seconds before the same kind of sensor trouble may notify again")
    max_per_window: int = _setting(
        5, minimum=2, maximum=1000,
        doc="notifications per window; the last one is kept for a summary of the rest")
    window_s: float = _setting(
        60.0, minimum=1, maximum=86400, doc="the sliding window of max_per_window")
    device_changes: bool = _setting(
        False, doc="also notify when a known LAN device changes address or open ports")
    mute_programs: tuple[str, ...] = _setting(
        (), doc="programs never notified: a path, or a name without '/'")
    mute_kinds: tuple[str, ...] = _setting(
        (), doc="event kinds never notified (new_executable, sensor_error, ...)")
    outbox_limit: int = _setting(
        1000, minimum=10, maximum=1_000_000,
        doc="undelivered messages kept per channel; older ones are dropped and counted")
    report_period: str = _setting(
        "off", choices=("off", "day", "week", "month"),
        doc="send the report of the past day, week or month (`netwarden report`) on a "
            "schedule; off = never")
    report_at: str = _setting(
        "08:00", convert=_clock_time,
        doc="local time of day (HH:MM) the scheduled report is sent")
    report_weekday: str = _setting(
        "mon", choices=WEEKDAYS, doc="the day a weekly report is sent (a monthly one: the 1st)")
    report_channels: tuple[str, ...] = _setting(
        (), convert=_channel_names,
        doc="channels the scheduled report goes to (desktop, webhook, mqtt, ntfy); "
            "empty = every enabled channel")
    report_top: int = _setting(
        10, minimum=1, maximum=1000, doc="programs and destinations a scheduled report lists")


@dataclass(frozen=True)
class WebhookConfig:
    url: str = _setting(
        "", doc="POST each notification as JSON here (http or https); empty = off")
    secret: str = _setting("", doc="HMAC-SHA256 key for the X-Netwarden-Signature header")
    secret_file: str = _setting("", doc="read the HMAC key from this file instead")
    timeout_s: float = _setting(10.0, minimum=0.1, maximum=300, doc="per request")
    max_attempts: int = _setting(6, minimum=1, maximum=100, doc="tries before a failure")
    backoff_s: float = _setting(
        2.0, minimum=0.01, maximum=3600, doc="wait before the first retry; doubles each time")


@dataclass(frozen=True)
class MqttConfig:
    host: str = _setting("", doc="MQTT broker host name or address; empty = off")
    port: int = _setting(1883, minimum=1, maximum=65535, doc="broker port")
    topic: str = _setting("netwarden", doc="topic prefix: messages go to PREFIX/HOST/KIND")
    username: str = _setting("", doc="user name, if the broker wants one")
    password: str = _setting("", doc="password")
    password_file: str = _setting("", doc="read the password from this file instead")
    tls: bool = _setting(False, doc="connect with TLS (system CA certificates)")
    qos: int = _setting(1, minimum=0, maximum=2, doc="MQTT quality of service")
    timeout_s: float = _setting(10.0, minimum=0.1, maximum=300, doc="connect and publish")
    max_attempts: int = _setting(6, minimum=1, maximum=100, doc="tries before a failure")
    backoff_s: float = _setting(
        2.0, minimum=0.01, maximum=3600, doc="wait before the first retry; doubles each time")


@dataclass(frozen=True)
class NtfyConfig:
    url: str = _setting("", doc="ntfy-style topic URL to POST to; empty = off")
    token: str = _setting("", doc="access token (Authorization: Bearer)")
    token_file: str = _setting("", doc="read the token from this file instead")
    timeout_s: float = _setting(10.0, minimum=0.1, maximum=300, doc="per request")
    max_attempts: int = _setting(6, minimum=1, maximum=100, doc="tries before a failure")
    backoff_s: float = _setting(
        2.0, minimum=0.01, maximum=3600, doc="wait before the first retry; doubles each time")


@dataclass(frozen=True)
class VirusTotalConfig:
    enabled: bool = _setting(False, doc="look up new executables' sha256 on VirusTotal")
    api_key: str = _setting("", doc="your VirusTotal API key")
    api_key_file: str = _setting("", doc="read the API key from this file instead")
    base_url: str = _setting("https://www.virustotal.com", doc="API server (v3 files API)")
    requests_per_minute: int = _setting(
        4, minimum=1, maximum=10000, doc="lookups per minute (the free tier allows 4)")
    requests_per_day: int = _setting(
        500, minimum=1, maximum=10_000_000, doc="lookups per UTC day (the free tier allows 500)")
    malicious_threshold: int = _setting(
        1, minimum=1, maximum=1000, doc="engines that must say malicious to notify")
    timeout_s: float = _setting(20.0, minimum=0.1, maximum=300, doc="per request")


REMOTE_SCHEMES = ("postgresql", "postgres", "mysql", "mariadb")
TLS_MODES = ("auto", "verify-full", "verify-ca", "require", "disable")


@dataclass(frozen=True)
class RemoteUrl:
    """Where the remote sink ships to. A password in the URL is allowed, never required
    (``password_file``), and never shown: :meth:`redacted` is what messages print."""

    scheme: str            # postgresql or mariadb (aliases folded)
    user: str
    password: str
    host: str
    port: int | None
    database: str

    @property
    def is_loopback(self) -> bool:
        if self.host in ("localhost", ""):
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def redacted(self) -> str:
        port = f":{self.port}" if self.port else ""
        user = f"{self.user}@" if self.user else ""
        return f"{self.scheme}://{user}{self.host}{port}/{self.database}"


def parse_remote_url(text: str) -> RemoteUrl:
    """``postgresql://USER@HOST:PORT/DB`` or ``mysql://`` / ``mariadb://``; ValueError says
    what is wrong (without repeating a password)."""
    from urllib.parse import unquote, urlsplit
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in REMOTE_SCHEMES:
        raise ValueError("must start with postgresql://, mysql:// or mariadb://")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has a port that is not a number from 1 to 65535") from None
    database = parts.path.lstrip("/")
    if not parts.hostname:
        raise ValueError("names no server, e.g. postgresql://USER@HOST:5432/DB")
    if not database or "/" in database:
        raise ValueError("names no database, e.g. postgresql://USER@HOST:5432/DB")
    return RemoteUrl("postgresql" if scheme.startswith("postgres") else "mariadb",
                     unquote(parts.username or ""), unquote(parts.password or ""),
                     parts.hostname, port, unquote(database))


def _remote_url(source: str, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(source, key, value, "must be a string")
    if value:
        try:
            parse_remote_url(value)
        except ValueError as exc:
            raise ConfigError(source, key, redact_url(value), str(exc)) from None
    return value


def read_secret_file(key: str, path: str) -> str:
    """A secret kept in a file (its content, surrounding space removed); ConfigError naming
    ``key`` when the file cannot be read."""
    try:
        return Path(path).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError("", key, path, f"cannot be read: {exc.strerror}") from None


def redact_url(text: str) -> str:
    """The URL with any password replaced, for messages about a URL that does not parse."""
    return re.sub(r"(//[^/@:]*):[^/@]*@", r"\1:***@", text)


@dataclass(frozen=True)
class RemoteConfig:
    url: str = _setting(
        "", convert=_remote_url,
        doc="ship the store to this server: postgresql://USER@HOST:PORT/DB or "
            "mysql://... / mariadb://... (empty: off)")
    password_file: str = _setting(
        "", doc="file holding the login role's password (keep it readable by user "
                "netwarden only)")
    tls: str = _setting(
        "auto", choices=TLS_MODES,
        doc="auto: verify-full, except disable on loopback; verify-full checks the "
            "certificate and the host name, verify-ca only the certificate")
    ca_file: str = _setting("", doc="CA certificate(s) to verify the server with (PEM)")
    cert_file: str = _setting("", doc="client certificate (PEM), if the server wants one")
    key_file: str = _setting("", doc="the client certificate's key (PEM)")
    host_name: str = _setting(
        "", doc="this host's login role name (default: the URL's user, else this machine's "
                "hostname)")
    reader_password_file: str = _setting(
        "", doc="the reader role's password, for viewers and exports given --db URL")
    batch_rows: int = _setting(5000, minimum=1, maximum=1_000_000,
                               doc="rows per table per shipped transaction")
    interval_s: float = _setting(5.0, minimum=0.1, maximum=3600,
                                 doc="pause between shipping rounds once caught up")
    retry_max_s: float = _setting(300.0, minimum=1, maximum=86400,
                                  doc="longest wait between attempts while the server is "
                                      "unreachable (the wait doubles from 1 s)")
    connect_timeout_s: float = _setting(10.0, minimum=1, maximum=300,
                                        doc="to connect to the server")
    heartbeat_s: float = _setting(60.0, minimum=1, maximum=86400,
                                  doc="how often the sink tells the server it is alive (the "
                                      "fleet watcher's host_silent counts from the last one)")
    state_path: str = _setting(
        "/var/lib/netwarden/sink-state.db",
        doc="the sink's own file: its cursors (what the server has committed) and status")


@dataclass(frozen=True)
class FleetConfig:
    url: str = _setting(
        "", convert=_remote_url,
        doc="the fleet's server, as a reader role (netwarden fleet; --db URL wins); the "
            "password: [remote] reader_password_file")
    grace_s: float = _setting(300.0, minimum=1, maximum=7 * 86400,
                              doc="a host that should be up and sent no heartbeat for this "
                                  "long is silent (host_silent)")
    check_s: float = _setting(30.0, minimum=1, maximum=3600,
                              doc="how often `netwarden fleet watch` looks")
    schedules: tuple[str, ...] = _setting(
        (), doc='when hosts must be up, e.g. ["laptop-anna=Mon-Fri 08:00-18:00", '
                '"*=always"]; hosts not listed: always')
    events_db: str = _setting(
        "", doc="where `fleet watch` records host_silent/host_back (a store the notifier can "
                "read; default $XDG_STATE_HOME/netwarden/fleet.db)")


@dataclass(frozen=True)
class Config:
    sensor: SensorConfig = field(default_factory=SensorConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    discovery: DiscoveryConfig = field(default_factory=DiscoveryConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)
    ignore: IgnoreConfig = field(default_factory=IgnoreConfig)
    scan: ScanConfig = field(default_factory=ScanConfig)
    log: LogConfig = field(default_factory=LogConfig)
    tui: TuiConfig = field(default_factory=TuiConfig)
    view: ViewConfig = field(default_factory=ViewConfig)
    dash: DashConfig = field(default_factory=DashConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    notifier: NotifierConfig = field(default_factory=NotifierConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    ntfy: NtfyConfig = field(default_factory=NtfyConfig)
    virustotal: VirusTotalConfig = field(default_factory=VirusTotalConfig)
    remote: RemoteConfig = field(default_factory=RemoteConfig)
    fleet: FleetConfig = field(default_factory=FleetConfig)

    @property
    def db_path(self) -> Path:
        return Path(self.store.path)


_SECTIONS: dict[str, type] = {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]


def _type_name(kind: type) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[kind]


def _check_strings(source: str, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(source, key, value, "must be a list of non-empty strings")
    return tuple(value)


def _check_value(source: str, key: str, spec: dataclasses.Field[Any], value: object) -> object:
    convert = spec.metadata.get("convert")
    if convert is None and str(spec.type) == "tuple[str, ...]":
        convert = _check_strings
    if convert is not None:
        return convert(source, key, value)
    kind = {"int": int, "float": float, "bool": bool, "str": str}[str(spec.type)]
    meta = spec.metadata
    # TOML booleans are not numbers here, and an integer is a fine float.
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    low, high = meta["minimum"], meta["maximum"]
    allowed = _type_name(kind)
    if low is not None and high is not None:
        allowed += f" from {low} to {high}"
    if meta["power_of_two"]:
        allowed += ", a power of two"
    if meta["choices"]:
        allowed = "one of " + ", ".join(repr(c) for c in meta["choices"])
    if not ok:
        raise ConfigError(source, key, value, f"must be {allowed}")
    if low is not None and value < low or high is not None and value > high:  # type: ignore[operator]
        raise ConfigError(source, key, value, f"must be {allowed}")
    if meta["power_of_two"] and (int(value) & (int(value) - 1)):  # type: ignore[call-overload]
        raise ConfigError(source, key, value, f"must be {allowed}")
    if meta["choices"] and value not in meta["choices"]:
        raise ConfigError(source, key, value, f"must be {allowed}")
    return value


def _build_section(source: str, name: str, raw: object) -> Any:
    cls = _SECTIONS[name]
    if not isinstance(raw, dict):
        raise ConfigError(source, f"[{name}]", raw, "must be a table of settings")
    specs = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in specs:
            raise ConfigError(source, f"[{name}] {key}", value,
                              "unknown setting; known: " + ", ".join(specs))
        values[key] = _check_value(source, f"[{name}] {key}", specs[key], value)
    return cls(**values)


def config_from_dict(data: dict[str, object], source: str = "") -> Config:
    sections = {}
    for name, raw in data.items():
        if name not in _SECTIONS:
            raise ConfigError(source, f"[{name}]", "...",
                              "unknown section; known: " + ", ".join(_SECTIONS))
        sections[name] = _build_section(source, name, raw)
    config = Config(**sections)
    if config.sensor.drain_interval_s > config.sensor.write_interval_s:
        raise ConfigError(source, "[sensor] drain_interval_s", config.sensor.drain_interval_s,
                          f"must not exceed write_interval_s ({config.sensor.write_interval_s})")
    if config.discovery.presence_gap_s < config.discovery.interval_s:
        raise ConfigError(source, "[discovery] presence_gap_s", config.discovery.presence_gap_s,
                          f"must be at least interval_s ({config.discovery.interval_s})")
    for target in config.watch.targets():
        if target.timeout_s > target.interval_s:
            raise ConfigError(source, f"[watch] target {target.name!r} timeout_s",
                              target.timeout_s, f"must not exceed its interval_s "
                              f"({target.interval_s})")
    return config


def read_toml(target: Path, required: bool, flag: str = "--config") -> dict[str, Any]:
    """The file's tables ({} for a missing file that is not required); errors name ``flag``."""
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError("", flag, str(target), "no such file") from None
        return {}
    except OSError as exc:
        raise ConfigError("", flag, str(target), f"cannot be read: {exc.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(target), "(syntax)", "", f"not valid TOML: {exc}") from None


def load_config(path: Path | None, required: bool = False) -> Config:
    """Read and validate the TOML file; a missing default file means all defaults."""
    target = path or DEFAULT_CONFIG_PATH
    return config_from_dict(read_toml(target, required), str(target))


def with_db_path(config: Config, db: Path | None) -> Config:
    """The config with --db applied (the command line wins over the file)."""
    if db is None:
        return config
    return dataclasses.replace(config, store=dataclasses.replace(config.store, path=str(db)))


def _shown(default: object) -> str:
    """A default as it is written in TOML where that differs from Python (lists)."""
    if isinstance(default, tuple):
        return "[" + ", ".join(f'"{v}"' if isinstance(v, str) else str(v)
                               for v in default) + "]"
    return repr(default)


def describe_settings() -> list[str]:
    """One line per setting with its default and meaning (for --help and docs)."""
    lines = []
    for name, cls in _SECTIONS.items():
        for spec in dataclasses.fields(cls):
            lines.append(f"[{name}] {spec.name} = {_shown(spec.default)}  "
                         f"# {spec.metadata['doc']}")
    return lines
