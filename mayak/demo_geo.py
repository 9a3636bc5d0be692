"""Invented GeoIP databases for ``mayak up --demo`` so its country and ISP panels are not empty.

The ranges below are demo data, not real allocations: each first octet the demo's visitors
use maps to one country and provider. Real deployments set MAYAK_GEOIP_CITY / _ISP / _ASN to
MaxMind databases.
"""

from __future__ import annotations

from pathlib import Path

from stream_jobs.geo_writer import write_geoip

# first octet -> (country, provider, AS number); invented for the demo
DEMO_RANGES = {
    5: ("AZ", "Azercell", 64501),
    37: ("AZ", "Bakcell", 64502),
    85: ("AZ", "Delta Telecom", 64503),
    94: ("AZ", "AzerTelecom", 64504),
    31: ("TR", "Turk Telekom", 64505),
    46: ("RU", "Rostelecom", 64506),
    62: ("DE", "Deutsche Telekom", 64507),
    185: ("GE", "Magticom", 64508),
}


def write_demo_geoip(folder: Path) -> tuple[Path, Path]:
    """Write (city, isp) databases into ``folder`` (once) and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    city, isp = folder / "demo-city.mmdb", folder / "demo-isp.mmdb"
    if city.exists() and isp.exists():
        return city, isp
    ranges = {f"{octet}.0.0.0/8": found for octet, found in DEMO_RANGES.items()}
    write_geoip(
        city,
        "GeoIP2-City",
        {net: {"country": {"iso_code": country}} for net, (country, _, _) in ranges.items()},
    )
    write_geoip(
        isp,
        "GeoIP2-ISP",
        {
            net: {
                "isp": provider,
                "autonomous_system_number": asn,
                "autonomous_system_organization": provider,
            }
            for net, (_, provider, asn) in ranges.items()
        },
    )
    return city, isp
