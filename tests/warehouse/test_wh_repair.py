"""Rollups that missed part of an insert, or kept the views' part of an insert whose events
never landed, are rewritten to equal a recount of their source (warehouse/repair.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stream_jobs.sink import Lander, event_row
from tests.clock import FakeClock
from tests.rollup_recount import differences
from tests.warehouse.samples import insert_events, insert_rows, synthetic_events
from warehouse.repair import InflightJournal, days_of_ms, repair_days, rollups_of
from warehouse.rollup_ranges import monday

pytestmark = pytest.mark.clickhouse

ROLLUPS = {
    "agg_dim_daily",
    "agg_dim_hourly",
    "agg_dim_weekly",
    "agg_section_hourly",
    "agg_site_hourly",
    "bot_hits",
    "sessions",
}


def _days(rows: list[dict]) -> list:
    return sorted({r["ts"].date() for r in rows})


def _without_view(client, view: str, rows: list[dict]) -> None:
    """Land ``rows`` in events while ``view`` does not see them (a kill between two parts)."""
    client.command(f"DETACH TABLE {view}")
    try:
        insert_events(client, rows)
    finally:
        client.command(f"ATTACH TABLE {view}")


def test_every_rollup_is_found_from_the_views(wh) -> None:
    roots = {r.table: r for r in rollups_of(wh, "events")}
    assert set(roots) == {"agg_dim_hourly", "agg_section_hourly", "agg_site_hourly", "sessions"}
    assert [c.table for c in roots["agg_dim_hourly"].children] == ["agg_dim_daily"]
    (weekly,) = roots["agg_dim_hourly"].children[0].children
    assert (weekly.table, weekly.time_column, weekly.weekly) == ("agg_dim_weekly", "week", True)
    assert roots["sessions"].time_column == "day" and roots["agg_dim_hourly"].time_column == "hour"
    assert [r.table for r in rollups_of(wh, "failed_events")] == ["bot_hits"]


def test_days_missing_a_views_part_are_rewritten_and_healthy_days_are_not(wh) -> None:
    rows = synthetic_events(3000)
    insert_events(wh, rows[:2000])
    late = [r for r in rows[2000:] if r["ts"].date() == _days(rows)[-1]]
    _without_view(wh, "agg_dim_hourly_mv", late)  # agg_dim_daily misses them too (its feed)
    _without_view(wh, "sessions_mv", late[:5])
    assert differences(wh)["agg_dim_hourly"] > 0 and differences(wh)["sessions"] > 0

    assert repair_days(wh, "events", "ts", _days(rows)) == {
        "agg_dim_hourly": [_days(rows)[-1]],
        "sessions": [_days(rows)[-1]],
    }
    assert differences(wh) == dict.fromkeys(ROLLUPS, 0)
    n = wh.query("SELECT count() FROM events").result_rows[0][0]
    # every event counts once per dimension of the rollup (20 since 0013)
    assert wh.query("SELECT sum(events) FROM agg_dim_daily").result_rows[0][0] == 20 * n
    assert repair_days(wh, "events", "ts", _days(rows)) == {}  # nothing twice


def test_views_parts_of_an_insert_whose_events_never_landed_are_removed(wh) -> None:
    rows = synthetic_events(1500)
    insert_events(wh, rows)
    orphan = [str(r["event_id"]) for r in rows[::7]]  # their rollup rows stay: counted twice
    wh.command(
        "DELETE FROM events WHERE toString(event_id) IN {ids:Array(String)}",
        parameters={"ids": orphan},
    )
    assert differences(wh)["agg_site_hourly"] > 0

    repaired = set(repair_days(wh, "events", "ts", _days(rows)))
    assert (
        {"agg_dim_hourly", "agg_site_hourly", "sessions"}
        <= repaired
        <= {"agg_dim_hourly", "agg_site_hourly", "sessions", "agg_section_hourly"}
    )
    assert differences(wh) == dict.fromkeys(ROLLUPS, 0)


def test_a_weekly_rollup_is_checked_and_rewritten_by_whole_weeks(wh) -> None:
    # agg_dim_weekly (0018) holds whole weeks: a repaired day's week is rebuilt from
    # agg_dim_daily, keeping the other days of that week (a day's delete would lose them)
    rows = synthetic_events(3000)
    last = _days(rows)[-1]
    insert_events(wh, [r for r in rows if r["ts"].date() != last])
    _without_view(wh, "agg_dim_weekly_mv", [r for r in rows if r["ts"].date() == last])
    assert differences(wh)["agg_dim_weekly"] > 0 and differences(wh)["agg_dim_daily"] == 0
    # a week's row cannot tell which of its days is short: every day named of that week is
    # rewritten, and the week rebuilt from agg_dim_daily (which holds them all)
    same_week = [d for d in _days(rows) if monday(d) == monday(last)]
    assert repair_days(wh, "events", "ts", _days(rows)) == {"agg_dim_hourly": same_week}
    assert differences(wh) == dict.fromkeys(ROLLUPS, 0)
    n = wh.query("SELECT count() FROM events").result_rows[0][0]
    assert wh.query("SELECT sum(events) FROM agg_dim_weekly").result_rows[0][0] == 20 * n
    assert repair_days(wh, "events", "ts", _days(rows)) == {}


def test_a_rollup_added_by_a_later_migration_is_covered_without_code(wh) -> None:
    wh.command(
        "CREATE TABLE paths_daily (site_id String, day Date, path String, "
        "n SimpleAggregateFunction(sum, UInt64)) ENGINE = AggregatingMergeTree "
        "ORDER BY (site_id, day, path)"
    )
    wh.command(
        "CREATE MATERIALIZED VIEW paths_daily_mv TO paths_daily AS SELECT site_id, "
        "toDate(ts) AS day, path, count() AS n FROM events GROUP BY site_id, day, path"
    )
    rows = synthetic_events(800)
    insert_events(wh, rows[:500])
    _without_view(wh, "paths_daily_mv", rows[500:])
    assert differences(wh)["paths_daily"] > 0
    assert "paths_daily" in repair_days(wh, "events", "ts", _days(rows))
    assert differences(wh)["paths_daily"] == 0


class _LandsEventsOnlyThenFails:
    """An insert that lands the events part but none of the views' parts, then fails."""

    def __init__(self, client) -> None:
        self.client, self.failures = client, 1

    def __getattr__(self, name):
        return getattr(self.client, name)

    def raw_insert(self, *args, **kwargs):
        if self.failures:
            self.failures -= 1
            views = ["agg_dim_hourly_mv", "agg_site_hourly_mv", "sessions_mv"]
            for view in views:
                self.client.command(f"DETACH TABLE {view}")
            try:
                self.client.raw_insert(*args, **kwargs)
            finally:
                for view in views:
                    self.client.command(f"ATTACH TABLE {view}")
            raise ConnectionError("connection reset")
        return self.client.raw_insert(*args, **kwargs)


def test_the_lander_does_not_land_twice_what_a_failed_attempt_landed_and_repairs(
    wh, tmp_path
) -> None:
    rows = synthetic_events(300)
    values = [
        {
            **{k: str(v) if k == "event_id" else v for k, v in r.items()},
            "ts": int(r["ts"].timestamp() * 1000),
        }
        for r in rows
    ]
    journal = InflightJournal(tmp_path / "events.json", "events", "ts")
    clock = FakeClock()
    lander = Lander(
        _LandsEventsOnlyThenFails(wh), "events", event_row, clock=clock, journal=journal
    )
    assert lander.land([(0, i, v) for i, v in enumerate(values)]) == 300
    assert wh.query("SELECT count(), uniqExact(event_id) FROM events").result_rows == [(300, 300)]
    assert differences(wh) == dict.fromkeys(ROLLUPS, 0)
    assert journal.pending() == []  # checked and forgotten
    assert clock.slept == [lander.retry_seconds]  # one failed attempt, retried after a pause


def test_the_journal_names_the_days_of_the_insert_in_flight(tmp_path) -> None:
    journal = InflightJournal(tmp_path / "sink" / "events.json", "events", "ts")
    day = 86_400_000
    journal.begin(days_of_ms([3 * day + 5, 3 * day + 9, 5 * day]))
    assert [d.isoformat() for d in journal.pending()] == ["1970-01-04", "1970-01-06"]
    journal.begin(days_of_ms([7 * day]))  # a day still unchecked stays named
    assert len(journal.pending()) == 3
    assert journal.unchecked  # and is checked after the next insert (here: a new process)


def test_a_summing_rollup_is_compared_by_its_key_and_repaired(wh) -> None:
    today = datetime.now(UTC).date()  # dead letters are kept 30 days
    rows = [
        {
            "failed_at": f"{today - timedelta(days=d)} 10:00:00",
            "reason": "bot",
            "step": "useragent",
            "detail": "Googlebot",
            "site_id": "s1",
            "event_id": f"e{d}{i}",
            "payload": "{}",
            "kafka_partition": 0,
            "kafka_offset": 10 * d + i,
        }
        for d in (1, 2)
        for i in range(3)
    ]
    for row in rows[:-1]:  # one insert each: bot_hits holds one row per insert until merged
        insert_rows(wh, [row], "failed_events")
    assert differences(wh)["bot_hits"] == 0
    wh.command("DETACH TABLE bot_hits_mv")
    insert_rows(wh, rows[-1:], "failed_events")
    wh.command("ATTACH TABLE bot_hits_mv")
    assert differences(wh)["bot_hits"] == 1
    days = [today - timedelta(days=d) for d in (1, 2)]
    assert repair_days(wh, "failed_events", "failed_at", days) == {"bot_hits": [days[1]]}
    assert differences(wh)["bot_hits"] == 0
    assert wh.query("SELECT sum(hits) FROM bot_hits").result_rows == [(6,)]
