"""Exactly-once landing in real ClickHouse (chDB): offsets skipped after a crash, ids deduped."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import orjson
import pytest

from stream_jobs.sink import (
    EVENT_IDS,
    FAILURES,
    Lander,
    LandingBuffer,
    event_row,
    failed_row,
)
from tests.clock import FakeClock
from warehouse.repair import recount_bot_hits

pytestmark = pytest.mark.clickhouse


def _event(**fields) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "pageview",
        "site_id": "elegal",
        "ts": int(time.time() * 1000),
        "visitor_id": "v",
        "session_id": "s",
        "path": "/",
        "asn": 0,
        "props": {"ignored": 1},
        **fields,
    }


def _count(client, table: str = "events") -> int:
    return client.query(f"SELECT count() FROM {table}").result_rows[0][0]


def test_events_land_as_sent_to_the_millisecond_with_defaults_for_missing_fields(wh) -> None:
    # a recent second (a fixed one would fall out of retention), odd milliseconds after it
    second = int(time.time()) * 1000
    full = _event(
        ts=second + 123,
        path='/xidmətlər/"notarius"',
        asn=28787,
        engaged_ms=5000,
        scroll_pct=80,
        browser_major="131",
        country="AZ",
    )
    sparse = _event(ts=second + 100)
    for key in ("asn", "props"):
        sparse.pop(key)
    assert Lander(wh, "events", event_row).land([(1, 7, full), (0, 9, sparse)]) == 2
    rows = wh.query(
        "SELECT toUnixTimestamp64Milli(ts), path, asn, engaged_ms, scroll_pct, "
        "browser_major, country, kafka_partition, kafka_offset FROM events "
        "ORDER BY ts DESC"
    ).result_rows
    assert rows == [
        (second + 123, '/xidmətlər/"notarius"', 28787, 5000, 80, "131", "AZ", 1, 7),
        (second + 100, "/", 0, 0, 0, "", "", 0, 9),
    ]


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
    assert (
        wh.query("SELECT uniqExact(kafka_partition, kafka_offset) FROM events").result_rows[0][0]
        == 10
    )


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


def test_a_batch_larger_than_one_duplicate_lookup_lands_once(wh) -> None:
    # 10,000 ids do not fit in one query (ClickHouse's max_query_size): looked up in parts
    events = [_event() for _ in range(10_000)]
    lander = Lander(wh, "events", event_row, dedup=EVENT_IDS)
    assert lander.land([(0, i, e) for i, e in enumerate(events)]) == 10_000
    again = [(1, i, dict(e)) for i, e in enumerate(events[::-1])]  # re-sent, elsewhere
    assert lander.land(again) == 0
    assert lander.counters["skipped_duplicates"] == 10_000
    assert _count(wh) == 10_000


def test_failed_events_land_and_bots_are_counted_per_site_and_day(wh) -> None:
    now = int(time.time() * 1000)
    records = [
        (
            0,
            i,
            {
                "reason": "bot",
                "step": "useragent",
                "detail": "Googlebot",
                "failed_at": now,
                "event": {"id": str(uuid.uuid4()), "site": "elegal"},
            },
        )
        for i in range(3)
    ]
    records.append(
        (
            1,
            0,
            {
                "reason": "schema",
                "step": "validate",
                "detail": "type:literal_error",
                "failed_at": now,
                "event": {"site": "elegal"},
            },
        )
    )
    lander = Lander(wh, "failed_events", failed_row, FAILURES)
    assert lander.land(records) == 4
    assert Lander(wh, "failed_events", failed_row, FAILURES).land(records) == 0  # redelivered
    # the processing agent re-sent one bot rejection after a crash: new offset, later stamp
    again = {**records[0][2], "failed_at": now + 60_000}
    assert lander.land([(0, 50, again)]) == 0
    assert _count(wh, "failed_events") == 4
    stamps = wh.query("SELECT DISTINCT toUnixTimestamp64Milli(failed_at) FROM failed_events")
    assert stamps.result_rows == [(now,)]  # to the millisecond
    rows = wh.query(
        "SELECT site_id, bot, sum(hits) FROM bot_hits GROUP BY site_id, bot"
    ).result_rows
    assert rows == [("elegal", "Googlebot", 3)]
    assert _count(wh) == 0  # bots never enter events


def test_bot_hits_a_crash_kept_from_the_view_are_recounted_once(wh) -> None:
    now = int(time.time() * 1000)
    bots = [
        {
            "reason": "bot",
            "step": "useragent",
            "detail": family,
            "failed_at": now,
            "event": {"id": str(uuid.uuid4()), "site": "elegal"},
        }
        for family in ["Googlebot"] * 5 + ["bingbot"] * 2
    ]
    lander = Lander(wh, "failed_events", failed_row, FAILURES)
    assert lander.land([(0, o, v) for o, v in enumerate(bots)]) == 7
    # the worker died after the failed_events part and before the view's bot_hits part
    wh.command("TRUNCATE TABLE bot_hits")
    wh.insert(
        "bot_hits",
        [[datetime.fromtimestamp(now / 1000, UTC).date(), "elegal", "Googlebot", 2]],
        column_names=["day", "site_id", "bot", "hits"],
    )
    assert recount_bot_hits(wh) == 5
    assert recount_bot_hits(wh) == 0  # nothing is counted twice
    rows = wh.query("SELECT bot, sum(hits) FROM bot_hits GROUP BY bot ORDER BY bot").result_rows
    assert rows == [("Googlebot", 5), ("bingbot", 2)]


def test_landing_buffer_lands_what_waits_once_per_flush(wh) -> None:
    events = [_event() for _ in range(5)]
    buffer = LandingBuffer(
        Lander(wh, "events", event_row, dedup=EVENT_IDS),
        lambda raw: [(p, o, orjson.loads(v)) for p, o, v in raw],
        most=3,
    )
    assert [buffer.add(0, o, orjson.dumps(e)) for o, e in enumerate(events[:3])] == [
        False,
        False,
        True,
    ]
    buffer.add(1, 0, orjson.dumps(events[3]))

    async def flush_twice() -> list[int]:  # the timer and a commit at the same time
        return list(await asyncio.gather(buffer.flush(), buffer.flush()))

    assert sorted(asyncio.run(flush_twice())) == [0, 4]
    assert _count(wh) == 4
    buffer.add(1, 1, orjson.dumps(events[4]))
    buffer.drop()  # partitions revoked: read again by whoever gets them
    assert asyncio.run(buffer.flush()) == 0 and _count(wh) == 4
    # a message holding several rows (a mayak.events batch) counts as that many
    assert buffer.add(1, 1, orjson.dumps(events[4]), rows=2) is False
    assert buffer.add(1, 2, orjson.dumps(_event()), rows=1) is True


def test_custom_event_props_outbound_and_section_dwell_land(wh) -> None:
    custom = _event(
        event_type="custom",
        event_name="download",
        props={"format": "pdf", "size": "12", "ok": "true"},
    )
    outbound = _event(
        event_type="outbound", outbound_url="https://gov.az/services/notary", props={}
    )
    engagement = _event(
        event_type="engagement",
        engaged_ms=9000,
        props={},
        section_names=["intro", "fees"],
        section_ms=[4114, 3002],
    )
    records = [(0, i, e) for i, e in enumerate((custom, outbound, engagement))]
    assert Lander(wh, "events", event_row).land(records) == 3
    rows = wh.query(
        "SELECT event_type, event_name, props, outbound_url, section_names, "
        "section_ms FROM events ORDER BY kafka_offset"
    ).result_rows
    assert rows == [
        ("custom", "download", {"format": "pdf", "size": "12", "ok": "true"}, "", [], []),
        ("outbound", "", {}, "https://gov.az/services/notary", [], []),
        ("engagement", "", {}, "", ["intro", "fees"], [4114, 3002]),
    ]


@pytest.mark.clickhouse
def test_a_row_clickhouse_refuses_is_a_dead_letter_not_a_stalled_partition(wh) -> None:
    from stream_jobs.poison import valid_event

    class RetriesAtMostThrice(FakeClock):
        def sleep_blocking(self, seconds: float) -> None:
            super().sleep_blocking(seconds)
            if len(self.slept) > 3:
                raise RuntimeError("a refused row was retried again and again")

    clock = RetriesAtMostThrice()

    good = [_event() for _ in range(3)]
    bad = _event(scroll_pct="deep")  # passes the sink's own check; ClickHouse refuses it
    lander = Lander(wh, "events", event_row, dedup=EVENT_IDS, clock=clock)
    poisoned: list[tuple[int, int, str]] = []

    async def on_poison(partition: int, offset: int, error: str) -> None:
        poisoned.append((partition, offset, error))

    buffer = LandingBuffer(
        lander,
        lambda raw: [(p, o, orjson.loads(v)) for p, o, v in raw],
        most=10,
        valid=valid_event,
        on_poison=on_poison,
    )
    for offset, event in enumerate([good[0], bad, good[1], good[2]]):
        buffer.add(0, offset, orjson.dumps(event))
    assert asyncio.run(buffer.flush()) == 3
    assert [(p, o) for p, o, _ in poisoned] == [(0, 1)] and "BadRows" in poisoned[0][2]
    assert clock.slept == []  # refused at once, not retried every few seconds for ever
    assert _count(wh) == 3
