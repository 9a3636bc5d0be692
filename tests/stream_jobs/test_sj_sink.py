"""Exactly-once landing in real ClickHouse (chDB): offsets skipped after a crash, ids deduped."""

from __future__ import annotations

import time
import uuid

import pytest

from stream_jobs.sink import EVENT_IDS, FAILURES, Lander, event_row, failed_row
from warehouse.migrate import migrate
from warehouse.testing import drop, fresh_database

pytestmark = pytest.mark.clickhouse


@pytest.fixture
def wh():
    client = fresh_database()
    migrate(client)
    yield client
    drop(client)


def _event(**fields) -> dict:
    return {"event_id": str(uuid.uuid4()), "event_type": "pageview", "site_id": "elegal",
            "ts": int(time.time() * 1000), "visitor_id": "v", "session_id": "s", "path": "/",
            "asn": 0, "props": {"ignored": 1}, **fields}


def _count(client, table: str = "events") -> int:
    return client.query(f"SELECT count() FROM {table}").result_rows[0][0]


def test_a_redelivered_range_is_skipped_after_a_restart(wh) -> None:
    events = [_event() for _ in range(10)]
    records = [(p, o, events[o * 2 + p]) for o in range(5) for p in (0, 1)]
    assert Lander(wh, "events", event_row, dedup=EVENT_IDS).land(records[:6]) == 6
    # a crash before the commit: a new worker gets everything again, cut differently
    restarted = Lander(wh, "events", event_row, dedup=EVENT_IDS)
    assert restarted.land(records[:4]) == 0
    assert restarted.land(records[4:]) == 4
    assert restarted.counters["skipped_offsets"] == 6
    assert _count(wh) == 10
    assert wh.query("SELECT uniqExact(kafka_partition, kafka_offset) FROM events").result_rows[0][0] == 10


def test_a_partly_landed_batch_lands_only_what_is_missing(wh) -> None:
    events = [_event() for _ in range(6)]
    first = Lander(wh, "events", event_row)
    first.land([(0, 0, events[0]), (0, 2, events[2])])  # as if offset 1 had been lost in a crash
    again = Lander(wh, "events", event_row)
    assert again.land([(0, i, events[i]) for i in range(6)]) == 4
    assert _count(wh) == 6


def test_duplicates_made_upstream_are_dropped_by_event_id(wh) -> None:
    lander = Lander(wh, "events", event_row, dedup=EVENT_IDS)
    event = _event()
    assert lander.land([(0, 0, event), (0, 1, dict(event))]) == 1  # twice in one batch
    assert lander.land([(1, 7, dict(event))]) == 0  # re-sent later, other partition and offset
    assert lander.counters["skipped_duplicates"] == 2
    assert _count(wh) == 1


def test_failed_events_land_and_bots_are_counted_per_site_and_day(wh) -> None:
    now = int(time.time() * 1000)
    records = [(0, i, {"reason": "bot", "step": "useragent", "detail": "Googlebot",
                       "failed_at": now, "event": {"id": str(uuid.uuid4()), "site": "elegal"}})
               for i in range(3)]
    records.append((1, 0, {"reason": "schema", "step": "validate", "detail": "type:literal_error",
                           "failed_at": now, "event": {"site": "elegal"}}))
    lander = Lander(wh, "failed_events", failed_row, FAILURES)
    assert lander.land(records) == 4
    assert Lander(wh, "failed_events", failed_row, FAILURES).land(records) == 0  # redelivered
    # the processing agent re-sent one bot rejection after a crash: new offset, later stamp
    again = {**records[0][2], "failed_at": now + 60_000}
    assert lander.land([(0, 50, again)]) == 0
    assert _count(wh, "failed_events") == 4
    rows = wh.query("SELECT site_id, bot, sum(hits) FROM bot_hits GROUP BY site_id, bot").result_rows
    assert rows == [("elegal", "Googlebot", 3)]
    assert _count(wh) == 0  # bots never enter events
