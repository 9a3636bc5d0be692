"""tracker: gzipped (-9) bytes of the beacon that the collector serves at /t.js."""

from __future__ import annotations

import gzip

from producers.collector.app import BEACON


def run(results: dict, details: dict) -> None:
    size = len(gzip.compress(BEACON.read_bytes(), 9))
    results["tracker_gzip_bytes"] = size
    details["tracker_gzip_bytes"] = f"{BEACON.name}, {BEACON.stat().st_size} bytes minified"
