"""Test helpers for the stream jobs: GeoIP fixture databases (mmdb-writer), raw events, a clock.

Used by tests/stream_jobs and usable by other areas' tests (e.g. an e2e test that needs a
known country). Needs the ``test`` extra (mmdb-writer).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mmdb_writer import MmdbU32, MMDBWriter
from netaddr import IPSet

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
AZ_IP, TR_IP = "85.132.10.20", "78.160.1.2"


def write_city(path: Path) -> Path:
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City")
    writer.insert_network(IPSet(["85.132.0.0/16"]), {"country": {"iso_code": "AZ"}})
    writer.insert_network(IPSet(["78.160.0.0/16"]), {"country": {"iso_code": "TR"}})
    writer.to_db_file(str(path))
    return path


def write_isp(path: Path) -> Path:
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-ISP")
    writer.insert_network(IPSet(["85.132.0.0/16"]), {
        "isp": "Delta Telecom", "autonomous_system_number": MmdbU32(29049),
        "autonomous_system_organization": "Delta Telecom Ltd"})
    writer.to_db_file(str(path))
    return path


def write_asn(path: Path) -> Path:
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-ASN")
    writer.insert_network(IPSet(["78.160.0.0/16"]), {
        "autonomous_system_number": MmdbU32(9121),
        "autonomous_system_organization": "Turk Telekom"})
    writer.to_db_file(str(path))
    return path


class Clock:
    """A settable clock."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def raw_event(**fields: Any) -> dict:
    base = {"v": 1, "id": str(uuid.uuid4()), "type": "pageview", "site": "elegal",
            "ts": int(time.time() * 1000), "url": "https://e-legal.az/services/notary",
            "ua": CHROME, "ip": AZ_IP}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}

