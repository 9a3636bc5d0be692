"""The thin end-to-end path: HTTP -> collector -> real Kafka -> real Faust worker -> chDB -> API."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def _wait_for_pageviews(url: str, at_least: int, headers: dict, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = httpx.get(url, timeout=5, headers=headers).json()
        if body.get("pageviews", 0) >= at_least:
            return body
        time.sleep(0.5)
    raise AssertionError(f"pageviews never reached {at_least}: last answer {body}")


def test_pageview_travels_from_collector_to_clickhouse(stack) -> None:
    stack.start_worker()
    stack.start_collector()
    settings = stack.settings
    event_id = str(uuid.uuid4())
    event = {
        "v": 1,
        "id": event_id,
        "type": "pageview",
        "site": "demo",
        "ts": int(time.time() * 1000),
        "url": "https://e-legal.az/services/notary?x=1#top",
    }
    answer = httpx.post(
        f"{settings.collector_url}/e",
        json=event,
        timeout=10,
        headers={
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Origin": "https://e-legal.az",
        },
    )
    assert answer.status_code in (200, 202), answer.text

    summary = _wait_for_pageviews(
        f"{settings.dashboards_url}/api/stats/summary?site=demo", 1, stack.api_headers
    )
    assert summary["pageviews"] == 1
    # the worker settled its heap once it had started (mayak.heap), and still landed the event
    assert re.search(r"froze [\d,]+ start-up objects out of the cyclic GC", stack.log("worker"))

    stack.stop("worker")
    rows = stack.sql(f"SELECT event_type, site_id, path FROM events WHERE event_id = '{event_id}'")
    assert rows == [{"event_type": "pageview", "site_id": "demo", "path": "/services/notary"}]

    # a restarted worker on the same data directory still serves the earlier event
    stack.start_worker()
    again = httpx.get(
        f"{settings.dashboards_url}/api/stats/summary?site=demo",
        timeout=5,
        headers=stack.api_headers,
    ).json()
    assert again["pageviews"] == 1
