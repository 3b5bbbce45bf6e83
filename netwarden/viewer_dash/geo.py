"""Remote countries: from the user's GeoLite2/DB-IP `.mmdb` file when one is configured
(through geoip2), else from the country data embedded in the `iptocc` package, which works
with no download.

`open_country_lookup(path)` gives a function address -> country label (or None), which
database it reads and when that was built, for the page to say. The shaping
(`country_totals`) takes any such function, so it is tested with a dictionary as well as
with a real `.mmdb` written by the tests and with the embedded data.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from netwarden.store.traffic_queries import TrafficTotal

CountryLookup = Callable[[str], "str | None"]

HOW_TO_GET_ONE = (
    "For names and more precise countries, get the free GeoLite2 Country database "
    "(a free MaxMind account; download 'GeoLite2-Country.mmdb', or use `geoipupdate`) or "
    "DB-IP's 'IP to Country Lite' .mmdb, then set `geoip_mmdb = \"/path/to/file.mmdb\"` in "
    "the [dash] section of /etc/netwarden/config.toml and restart `netwarden dash`.")

NO_DATABASE = ("No country database: the embedded one (Python package `iptocc`) is not "
               "installed (pip install 'netwarden[viewers]'), and none is configured. ")

EMBEDDED = ("Countries from the embedded iptocc {version} data (the five regional internet "
            "registries' delegations: the country an address block is registered to, which "
            "is not always where it is used).")

PRIVATE = "(local/private)"
UNKNOWN = "(unknown)"


@dataclass(frozen=True)
class GeoSource:
    lookup: CountryLookup | None
    note: str                     # which database, or why there is none or the file is unused
    built: float | None = None    # when that database was built (epoch), for its age

    def describe(self, now: float) -> str:
        """The note with the database's build date and age, as the page shows it."""
        if self.built is None:
            return self.note if self.lookup is None else self.note + " Build date unknown."
        day = datetime.fromtimestamp(self.built, timezone.utc).strftime("%Y-%m-%d")
        return f"{self.note} Built {day}, {_age(now - self.built)} old."


def _age(seconds: float) -> str:
    days = int(seconds // 86400)
    if days >= 1:
        return "1 day" if days == 1 else f"{days} days"
    hours = int(seconds // 3600)
    if hours < 1:
        return "under an hour"
    return "1 hour" if hours == 1 else f"{hours} hours"


def open_country_lookup(path: str) -> GeoSource:
    """The configured .mmdb when it can be read; else the embedded data, saying why."""
    if not path:
        return embedded_country_lookup()
    if not Path(path).is_file():
        return embedded_country_lookup(f"The GeoIP database {path} does not exist. ")
    try:
        import geoip2.database
        import geoip2.errors
        reader = geoip2.database.Reader(path)
    except Exception as exc:  # maxminddb raises several types for a damaged file
        return embedded_country_lookup(f"The GeoIP database {path} cannot be read ({exc}). ")
    metadata = reader.metadata()
    database_type = metadata.database_type
    query = reader.city if "City" in database_type else reader.country

    def lookup(address: str) -> str | None:
        try:
            record = query(address)
        except (geoip2.errors.AddressNotFoundError, ValueError):
            return None
        country = record.country
        if not country.iso_code:
            return None
        return f"{country.iso_code} {country.name or ''}".strip()

    return GeoSource(lookup, f"Countries from {path} ({database_type}).",
                     float(metadata.build_epoch) or None)


def embedded_country_lookup(problem: str = "") -> GeoSource:
    """The `iptocc` package's data: ISO codes only, built into the wheel, no file to open."""
    try:
        import iptocc
    except ImportError:
        return GeoSource(None, problem + NO_DATABASE + HOW_TO_GET_ONE)
    from importlib.metadata import PackageNotFoundError, version
    try:
        release = version("iptocc")
    except PackageNotFoundError:
        release = "(unknown version)"

    def lookup(address: str) -> str | None:
        return iptocc.country_code(address) or None

    note = (problem + "Using the embedded data instead. " if problem else "") \
        + EMBEDDED.format(version=release)
    return GeoSource(lookup, note, iptocc_built())


def iptocc_built() -> float | None:
    """When the installed iptocc wheel, and so its data, was built: its SBOM's timestamp.

    iptocc embeds the registries' data when its wheel is built (nightly, a release each time
    the data change) and has no call that says when; the wheel's CycloneDX SBOM records the
    build time."""
    from importlib.metadata import PackageNotFoundError, distribution
    try:
        files = distribution("iptocc").files or []
    except PackageNotFoundError:
        return None
    for file in files:
        if "sboms" in file.parts and file.name.endswith(".json"):
            try:
                stamp = json.loads(Path(str(file.locate())).read_text())["metadata"]["timestamp"]
                return datetime.fromisoformat(stamp[:19]).replace(
                    tzinfo=timezone.utc).timestamp()
            except (OSError, ValueError, KeyError, TypeError):
                return None
    return None


def _country_of(address: str, lookup: CountryLookup) -> str:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return UNKNOWN
    if parsed.is_private or parsed.is_loopback or parsed.is_link_local or parsed.is_multicast:
        return PRIVATE
    return lookup(address) or UNKNOWN


@dataclass(frozen=True)
class CountryTotal:
    country: str
    sent: int
    recv: int
    addresses: int

    @property
    def total(self) -> int:
        return self.sent + self.recv


def country_totals(by_address: Sequence[TrafficTotal],
                   lookup: CountryLookup) -> list[CountryTotal]:
    """Remote-address totals summed per country, largest first."""
    sums: dict[str, list[int]] = {}
    for row in by_address:
        entry = sums.setdefault(_country_of(str(row.value), lookup), [0, 0, 0])
        entry[0] += row.sent
        entry[1] += row.recv
        entry[2] += 1
    totals = [CountryTotal(country, *values) for country, values in sums.items()]
    return sorted(totals, key=lambda c: (-c.total, c.country))
