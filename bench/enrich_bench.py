"""enrich: microseconds per event of the pure processors (validate ... sessionize) on a
realistic mix: real user agents repeating as in real traffic, encrypted public-format IPs,
GeoIP lookups in real-format MaxMind databases when the test ones are at hand.

The events are read as the worker's intake reads the collector's sealed messages: parsed and
vouched for, not validated against ``RawEvent`` again (``stream_jobs.validate``; the parse is
timed with them). The same events as plain values (validated in full, as a hook's or a
replay's are) are timed too, and shown beside it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.traffic import raw_records
from mayak.settings import Settings

MAXMIND = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "maxmind"


def run(work: Path, n: int, results: dict, details: dict) -> None:
    from stream_jobs.validate import vouch

    geo: dict[str, Any] = {}
    if (MAXMIND / "GeoIP2-City-Test.mmdb").exists():
        geo = {
            "geoip_city": str(MAXMIND / "GeoIP2-City-Test.mmdb"),
            "geoip_isp": str(MAXMIND / "GeoIP2-ISP-Test.mmdb"),
        }
    settings = Settings(data_dir=work / "enrich", **geo)
    records = [value for _, value in raw_records(n, settings.data_dir, seed=3)]
    per_event, ok = _timed(settings, records, vouch)  # as the intake reads the collector's
    per_plain, _ = _timed(settings, records, lambda value: value)
    results["enrich_us"] = round(per_event, 1)
    details["enrich_us"] = (
        f"{n:,} events, {ok:,} enriched, cold UA cache, "
        f"GeoIP {'MaxMind test DBs' if geo else 'absent'}; read as the collector's sealed "
        f"events (vouched for); as plain values, validated in full: {per_plain:.1f} us"
    )


def _timed(
    settings: Settings, records: list[bytes], read: Callable[[bytes], Any]
) -> tuple[float, int]:
    """Microseconds per event of a fresh pipeline over ``read(value)`` of each of ``records``
    (``read`` timed too), and how many it enriched."""
    from stream_jobs.processors import pipeline_from_settings

    pipeline = pipeline_from_settings(settings, sessions={})
    for value in records[: len(records) // 10]:  # warm-up: imports, regex compilation
        pipeline.run(read(value))
    pipeline = pipeline_from_settings(settings, sessions={})  # a cold UA cache again
    start = time.perf_counter()
    for value in records:
        pipeline.run(read(value))
    per_event = (time.perf_counter() - start) / len(records) * 1e6
    return per_event, pipeline.counters.get("ok", 0)
