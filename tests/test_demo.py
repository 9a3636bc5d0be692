"""The demo traffic exercises every metric: valid beacon events with per-section dwell, goals
with props, outbound clicks and a share of bounces (e-mail opens and service requests are
sent by their own producers in ``start_demo``)."""

from __future__ import annotations

import random
from collections import Counter

from contract.schema import ClientEvent
from mayak.demo import visit_events

NOW_MS = 1_780_000_000_000


def test_demo_visits_exercise_every_web_metric() -> None:
    rng = random.Random(7)
    visits = [visit_events(rng, NOW_MS) for _ in range(200)]
    events = [e for visit in visits for e in visit]
    for event in events:
        ClientEvent.model_validate(event)  # what the collector accepts
        assert event["ts"] <= NOW_MS
    kinds = Counter(e["type"] for e in events)
    assert set(kinds) == {"pageview", "engagement", "custom", "outbound"}
    assert all(
        e["sections"] and sum(e["sections"].values()) > 0
        for e in events
        if e["type"] == "engagement"
    )
    goals = [e for e in events if e["type"] == "custom"]
    assert all(e["name"] and e["props"] for e in goals)
    assert len({e["name"] for e in goals}) >= 3
    assert all(e["props"]["to"].startswith("https://") for e in events if e["type"] == "outbound")
    bounces = sum(
        Counter(e["type"] for e in v)["pageview"] == 1
        and not any(e["type"] in ("custom", "outbound") for e in v)
        for v in visits
    )
    assert 0.15 < bounces / len(visits) < 0.5
