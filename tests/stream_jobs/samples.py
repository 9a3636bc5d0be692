"""Test helpers for the stream jobs: GeoIP fixture databases (``stream_jobs.geo_writer``), raw
events.

Used by tests/stream_jobs and usable by other areas' tests (e.g. an e2e test that needs a
known country). The clock: ``tests/clock.py``.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from stream_jobs.geo_writer import write_geoip

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
AZ_IP, TR_IP = "85.132.10.20", "78.160.1.2"


def write_city(path: Path) -> Path:
    return write_geoip(
        path,
        "GeoIP2-City",
        {
            "85.132.0.0/16": {"country": {"iso_code": "AZ"}},
            "78.160.0.0/16": {"country": {"iso_code": "TR"}},
        },
    )


def write_isp(path: Path) -> Path:
    return write_geoip(
        path,
        "GeoIP2-ISP",
        {
            "85.132.0.0/16": {
                "isp": "Delta Telecom",
                "autonomous_system_number": 29049,
                "autonomous_system_organization": "Delta Telecom Ltd",
            }
        },
    )


def write_asn(path: Path) -> Path:
    return write_geoip(
        path,
        "GeoLite2-ASN",
        {
            "78.160.0.0/16": {
                "autonomous_system_number": 9121,
                "autonomous_system_organization": "Turk Telekom",
            }
        },
    )


def raw_event(**fields) -> dict:
    base = {
        "v": 1,
        "id": str(uuid.uuid4()),
        "type": "pageview",
        "site": "elegal",
        "ts": int(time.time() * 1000),
        "url": "https://e-legal.az/services/notary",
        "ua": CHROME,
        "ip": AZ_IP,
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}
