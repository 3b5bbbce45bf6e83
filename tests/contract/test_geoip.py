"""GeoIP through geoip2 on a real .mmdb file, and what the page says without one."""

from __future__ import annotations

from pathlib import Path

from netwarden.store.traffic_queries import TrafficTotal
from netwarden.viewer_dash.geo import (
    HOW_TO_GET_ONE,
    PRIVATE,
    country_totals,
    open_country_lookup,
)
from tests.support.geoip import write_country_mmdb


def test_countries_from_a_real_mmdb(tmp_path: Path):
    source = open_country_lookup(str(write_country_mmdb(tmp_path / "c.mmdb")))
    assert source.lookup is not None and "GeoLite2-Country" in source.note
    assert source.lookup("93.184.216.34") == "US United States"
    assert source.lookup("151.101.0.1") == "SE Sweden"
    assert source.lookup("2001:db8::1") == "FR France"
    assert source.lookup("1.2.3.4") is None
    rows = [TrafficTotal("151.101.0.1", 5, 10, 0, 0), TrafficTotal("10.1.1.1", 1, 1, 0, 0),
            TrafficTotal("8.8.8.8", 1, 1, 0, 0)]
    assert [(c.country, c.total) for c in country_totals(rows, source.lookup)] == [
        ("SE Sweden", 15), (PRIVATE, 2), ("US United States", 2)]


def test_no_file_says_how_to_get_one(tmp_path: Path):
    for path, start in (("", "No GeoIP database configured"),
                        (str(tmp_path / "absent.mmdb"), "The GeoIP database")):
        source = open_country_lookup(path)
        assert source.lookup is None
        assert source.note.startswith(start) and HOW_TO_GET_ONE in source.note


def test_a_damaged_file_is_a_note_not_a_crash(tmp_path: Path):
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not a maxmind database")
    source = open_country_lookup(str(bad))
    assert source.lookup is None and "cannot be read" in source.note
