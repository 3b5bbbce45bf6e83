"""netwarden's configuration: one typed, frozen dataclass per TOML section.

``load_config(path)`` reads and validates the file once. Every problem (bad TOML, an unknown
section or key, a value of the wrong type or out of range) raises :class:`ConfigError`, whose
message names the file, the key, the value and what is allowed. The CLI turns it into one line
on stderr and exit status 78 (EX_CONFIG), which the systemd unit lists in
RestartPreventExitStatus: a typo stops the service once, it never crash-loops.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_PATH = Path("/etc/netwarden/config.toml")
DEFAULT_DB_PATH = Path("/var/lib/netwarden/netwarden.db")
EXIT_CONFIG_ERROR = 78


class ConfigError(ValueError):
    def __init__(self, source: str, key: str, value: object, allowed: str) -> None:
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key} = {value!r}: {allowed}")
        self.key = key
        self.value = value
        self.allowed = allowed


def _setting(default: Any, *, minimum: float | None = None, maximum: float | None = None,
             choices: tuple[str, ...] = (), power_of_two: bool = False, doc: str = "") -> Any:
    return field(default=default, metadata={
        "minimum": minimum, "maximum": maximum, "choices": choices,
        "power_of_two": power_of_two, "doc": doc})


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
    track_packet_sockets: bool = _setting(True, doc="count AF_PACKET sockets too")
    exit_grace_s: float = _setting(
        60.0, minimum=0, maximum=86400, doc="how long an exited process is remembered")


@dataclass(frozen=True)
class StoreConfig:
    path: str = _setting(str(DEFAULT_DB_PATH), doc="the SQLite database file")
    group: str = _setting("netwarden", doc="group allowed to read the database")


_RANGES = ("minute", "hour", "day", "week", "month", "all")


@dataclass(frozen=True)
class TuiConfig:
    default_range: str = _setting("hour", choices=_RANGES, doc="time range shown first")
    live_interval_s: float = _setting(
        2.0, minimum=0.5, maximum=3600, doc="how often live mode reads the store again")


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


@dataclass(frozen=True)
class Config:
    sensor: SensorConfig = field(default_factory=SensorConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    tui: TuiConfig = field(default_factory=TuiConfig)
    dash: DashConfig = field(default_factory=DashConfig)

    @property
    def db_path(self) -> Path:
        return Path(self.store.path)


_SECTIONS: dict[str, type] = {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]


def _type_name(kind: type) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[kind]


def _check_value(source: str, key: str, spec: dataclasses.Field[Any], value: object) -> object:
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
    return config


def load_config(path: Path | None, required: bool = False) -> Config:
    """Read and validate the TOML file; a missing default file means all defaults."""
    target = path or DEFAULT_CONFIG_PATH
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError("", "--config", str(target), "no such file") from None
        return Config()
    except OSError as exc:
        raise ConfigError("", "--config", str(target), f"cannot be read: {exc.strerror}") \
            from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(target), "(syntax)", "", f"not valid TOML: {exc}") from None
    return config_from_dict(data, str(target))


def with_db_path(config: Config, db: Path | None) -> Config:
    """The config with --db applied (the command line wins over the file)."""
    if db is None:
        return config
    return dataclasses.replace(config, store=dataclasses.replace(config.store, path=str(db)))


def describe_settings() -> list[str]:
    """One line per setting with its default and meaning (for --help and docs)."""
    lines = []
    for name, cls in _SECTIONS.items():
        for spec in dataclasses.fields(cls):
            lines.append(f"[{name}] {spec.name} = {spec.default!r}  # {spec.metadata['doc']}")
    return lines
