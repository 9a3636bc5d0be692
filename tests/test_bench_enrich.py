"""``mayak bench``'s enrich step, run small: both figures it prints exist and every event of
either read path was enriched (not timed against the limit)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import enrich_bench

pytestmark = pytest.mark.unit


def test_enrich_step_times_the_vouched_and_the_fully_validated_path(tmp_path: Path) -> None:
    results: dict = {}
    details: dict[str, str] = {}
    enrich_bench.run(tmp_path, 400, results, details)
    assert results["enrich_us"] > 0
    text = details["enrich_us"]
    assert text.startswith("400 events, 400 enriched"), text
    plain = re.search(r"as plain values, validated in full: ([\d.]+) us", text)
    assert plain and float(plain.group(1)) > 0, text
