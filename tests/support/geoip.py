"""A small real GeoIP2 Country database for tests, written with mmdb-writer."""

from __future__ import annotations

from pathlib import Path

#: network -> (ISO code, English name); the seeded store's public addresses are in them.
NETWORKS = {"93.184.216.0/24": ("US", "United States"), "142.250.0.0/15": ("US", "United States"),
            "151.101.0.0/16": ("SE", "Sweden"), "198.51.100.0/24": ("DE", "Germany"),
            "8.8.8.0/24": ("US", "United States"), "2001:db8::/32": ("FR", "France")}


def write_country_mmdb(path: Path) -> Path:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet
    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-Country", ipv4_compatible=True,
                        languages=["en"], description="netwarden test countries")
    for network, (code, name) in NETWORKS.items():
        writer.insert_network(IPSet([network]),
                              {"country": {"iso_code": code, "names": {"en": name}}})
    writer.to_db_file(str(path))
    return path
