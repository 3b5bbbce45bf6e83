"""GeoIP through geoip2 on a real .mmdb file (preferred when configured), and the embedded
country data (the iptocc package) used without one."""

from __future__ import annotations

from pathlib import Path

from netwarden.store.traffic_queries import TrafficTotal
import time

from netwarden.viewer_dash.geo import (
    PRIVATE,
    country_totals,
    iptocc_built,
    open_country_lookup,
)
from tests.support.geoip import write_country_mmdb


def test_countries_from_a_real_mmdb(tmp_path: Path):
    source = open_country_lookup(str(write_country_mmdb(tmp_path / "c.mmdb")))
    # The configured file wins over the embedded data, which would say "US" for 151.101/16.
    assert source.lookup is not None and "GeoLite2-Country" in source.note
    assert "iptocc" not in source.note
    assert source.built is not None and abs(source.built - time.time()) < 2 * 86400
    assert "Built " in source.describe(time.time()) and "under an hour old" in source.describe(
        source.built + 60)
    assert source.lookup("93.184.216.34") == "US United States"
    assert source.lookup("151.101.0.1") == "SE Sweden"
    assert source.lookup("2001:db8::1") == "FR France"
    assert source.lookup("1.2.3.4") is None
    rows = [TrafficTotal("151.101.0.1", 5, 10, 0, 0), TrafficTotal("10.1.1.1", 1, 1, 0, 0),
            TrafficTotal("8.8.8.8", 1, 1, 0, 0)]
    assert [(c.country, c.total) for c in country_totals(rows, source.lookup)] == [
        ("SE Sweden", 15), (PRIVATE, 2), ("US United States", 2)]


def test_without_a_file_the_embedded_data_answer_offline(tmp_path: Path):
    """Known public addresses by their registries' delegations; lookup only, no network."""
    source = open_country_lookup("")
    assert source.lookup is not None and "embedded iptocc" in source.note
    assert [source.lookup(a) for a in ("8.8.8.8", "1.0.16.1", "193.0.6.139",
                                       "2001:4860:4860::8888")] == ["US", "JP", "NL", "US"]
    assert source.lookup("10.0.0.1") is None and source.lookup("not an address") is None
    # Its age comes from the wheel's build time (its SBOM), after iptocc 3.0's release.
    built = iptocc_built()
    assert built is not None and source.built == built
    assert 1_735_689_600 < built <= time.time()          # 2025-01-01 .. now
    said = source.describe(built + 3 * 86400)
    assert said.startswith("Countries from the embedded iptocc") and "3 days old" in said
    rows = [TrafficTotal("8.8.8.8", 5, 10, 0, 0), TrafficTotal("192.168.1.2", 1, 1, 0, 0)]
    assert [(c.country, c.total) for c in country_totals(rows, source.lookup)] == [
        ("US", 15), (PRIVATE, 2)]


def test_a_missing_or_damaged_file_falls_back_to_the_embedded_data(tmp_path: Path):
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not a maxmind database")
    for path, problem in ((str(tmp_path / "absent.mmdb"), "does not exist"),
                          (str(bad), "cannot be read")):
        source = open_country_lookup(path)
        assert source.lookup is not None and source.lookup("8.8.8.8") == "US"
        assert source.note.startswith(f"The GeoIP database {path} {problem}")
        assert "Using the embedded data instead" in source.note
