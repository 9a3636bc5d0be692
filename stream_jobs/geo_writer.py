"""Small GeoIP databases in MaxMind's format, written from a mapping network -> record.

The one writer of the invented ranges of ``mayak up --demo`` (``mayak.demo_geo``) and of the
tests' fixture databases; ``stream_jobs.geo`` reads them like MaxMind's own. Records are what
MaxMind stores (``{"country": {"iso_code": "AZ"}}``, ``{"isp": ...}``); an
``autonomous_system_number`` is written as the unsigned 32-bit integer MaxMind uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmdb_writer import MmdbU32, MMDBWriter
from netaddr import IPSet


def write_geoip(path: Path, database_type: str, networks: Mapping[str, Mapping[str, Any]]) -> Path:
    """Write a ``database_type`` database (``GeoIP2-City``, ``GeoIP2-ISP``, ``GeoLite2-ASN``,
    ``GeoIP2-Anonymous-IP``) holding ``networks`` (CIDR -> record) to ``path``."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=database_type)
    for network, record in networks.items():
        record = dict(record)
        if isinstance(record.get("autonomous_system_number"), int):
            record["autonomous_system_number"] = MmdbU32(record["autonomous_system_number"])
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path
