"""``mayak bench --only product``: every call of the product page timed on its own, at the
number of events asked for, on a database kept for the next run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bench import product_bench
from tests.warehouse.samples import insert_rows

pytestmark = pytest.mark.clickhouse
ROOT = Path(__file__).resolve().parents[1]


def _bench(tmp_path: Path, events: int) -> dict:
    out = tmp_path / "product.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mayak",
            "bench",
            "--only",
            "product",
            "--events",
            str(events),
            "--rounds",
            "1",
            "--data",
            str(tmp_path / "data"),
            "--json",
            str(out),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "p95 / limit" in done.stdout and "load average" in done.stdout
    return json.loads(out.read_text())


def test_every_product_call_is_timed_and_the_data_is_reused(tmp_path: Path) -> None:
    figures = _bench(tmp_path, 20_000)
    calls = figures["calls_p95_ms"]
    per_view = len(product_bench.calls(date.today(), date.today(), ()))
    assert len(calls) == per_view * len(product_bench.VIEWS)
    assert {
        "all: entry-exit",
        "path: funnel",
        "country+device: summary?compare",
        "all: breakdown prop:form",
    } <= set(calls)
    assert figures["product_p95_ms"] == max(calls.values())
    # the second run finds the 20,000 events and adds none
    _bench(tmp_path, 20_000)
    count = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from warehouse.client import make_client; "
            "c = make_client(f'chdb://{sys.argv[1]}', 'bench'); "
            "print(c.query('SELECT count() FROM events').result_rows[0][0])",
            str(tmp_path / "data" / "dashboard-ch"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert count.stdout.strip() == "20000", count.stderr[-2000:]


def test_the_views_end_on_the_datas_last_local_day_not_on_today(wh) -> None:
    # a database filled on an earlier day is read in full: its window does not slide past it
    assert product_bench.last_day(wh) == date.today()  # nothing yet
    # days of the last month: fixed dates would fall out of retention (TTL drops on insert)
    first = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(
        days=30
    )
    insert_rows(
        wh,
        [
            {"event_id": uuid.uuid4(), "site_id": site, "ts": ts, "event_type": "pageview"}
            for site, ts in (
                (product_bench.SITE, first),
                (product_bench.SITE, first + timedelta(days=9, hours=13, minutes=30)),  # Baku: +1
                ("another-site", first + timedelta(days=20)),
            )
        ],
    )
    assert product_bench.last_day(wh) == first.date() + timedelta(days=10)
