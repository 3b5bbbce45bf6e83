"""Remote countries from a GeoIP2/GeoLite2 `.mmdb` file (optional: absent, it says why).

`open_country_lookup(path)` gives a function address -> country label (or None) and a note
for the page. The shaping (`country_totals`) takes any such function, so it is tested with a
dictionary as well as with a real `.mmdb` written by the tests.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from netwarden.store.traffic_queries import TrafficTotal

CountryLookup = Callable[[str], "str | None"]

HOW_TO_GET_ONE = (
    "Remote countries need a GeoIP database file. Get the free GeoLite2 Country database "
    "(a free MaxMind account; download 'GeoLite2-Country.mmdb', or use `geoipupdate`) or "
    "DB-IP's 'IP to Country Lite' .mmdb, then set `geoip_mmdb = \"/path/to/file.mmdb\"` in "
    "the [dash] section of /etc/netwarden/config.toml and restart `netwarden dash`.")

PRIVATE = "(local/private)"
UNKNOWN = "(unknown)"


@dataclass(frozen=True)
class GeoSource:
    lookup: CountryLookup | None
    note: str          # shown instead of the chart (no file) or under it (which file)


def open_country_lookup(path: str) -> GeoSource:
    if not path:
        return GeoSource(None, "No GeoIP database configured. " + HOW_TO_GET_ONE)
    if not Path(path).is_file():
        return GeoSource(None, f"The GeoIP database {path} does not exist. " + HOW_TO_GET_ONE)
    try:
        import geoip2.database
        import geoip2.errors
        reader = geoip2.database.Reader(path)
    except Exception as exc:  # maxminddb raises several types for a damaged file
        return GeoSource(None, f"The GeoIP database {path} cannot be read ({exc}). "
                         + HOW_TO_GET_ONE)
    database_type = reader.metadata().database_type
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

    return GeoSource(lookup, f"Countries from {path} ({database_type}).")


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
