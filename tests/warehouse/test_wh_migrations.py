"""Migrations apply on a fresh chDB database, re-run as a no-op, and match the schema snapshot."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from tests.warehouse.samples import (
    START,
    drop,
    fixed_visits,
    fresh_database,
    insert_events,
    insert_rows,
    synthetic_events,
)
from warehouse import reports
from warehouse.ddl import Layout
from warehouse.migrate import discover, migrate

SNAPSHOT = Path(__file__).parent / "snapshots" / "schema.sql"
pytestmark = pytest.mark.clickhouse


def schema(client) -> str:
    """SHOW CREATE of every table and view, database name removed, in name order."""
    names = [
        r[0]
        for r in client.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name"
        ).result_rows
    ]
    blocks = []
    for name in names:
        ddl = client.query(f"SHOW CREATE TABLE `{name}`").result_rows[0][0]
        blocks.append(ddl.replace(f"{client.database}.", "") + ";\n")
    return "\n".join(blocks)


def test_fresh_apply_then_noop(ch) -> None:
    applied = migrate(ch)
    assert applied == [m.name for m in discover()]
    versions = ch.query("SELECT version FROM schema_migrations ORDER BY version").result_rows
    assert [v for (v,) in versions] == [m.version for m in discover()]
    before = schema(ch)
    assert migrate(ch) == []
    assert schema(ch) == before
    assert ch.query("SELECT count() FROM schema_migrations").result_rows[0][0] == len(applied)


def test_schema_matches_snapshot(wh) -> None:
    # regenerate after an intended change: MAYAK_UPDATE_SNAPSHOTS=1 pytest tests/warehouse
    current = schema(wh)
    if os.environ.get("MAYAK_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(current)
    assert SNAPSHOT.exists(), "no snapshot yet: run with MAYAK_UPDATE_SNAPSHOTS=1"
    assert current == SNAPSHOT.read_text()


def test_materialized_views_feed_the_aggregates(wh) -> None:
    # days near now: fixed dates would fall out of retention (TTL drops rows on insert)
    days = {1: START.date(), 2: START.date() + timedelta(days=1)}
    rows = [
        {
            "event_id": f"00000000-0000-0000-0000-00000000000{i}",
            "event_type": kind,
            "site_id": "s1",
            "ts": f"{days[day]} 10:15:00",
            "visitor_id": f"v{i % 3}",
            "session_id": f"s{i % 2}",
            "path": "/a" if i % 2 else "/b",
            "country": "AZ",
        }
        for i, (kind, day) in enumerate(
            [
                ("pageview", 1),
                ("pageview", 1),
                ("pageview", 2),
                ("email_open", 2),
                ("engagement", 2),
            ]
        )
    ]
    insert_rows(wh, rows, settings={"date_time_input_format": "best_effort"})
    site = wh.query(
        "SELECT sum(pageviews), sum(email_opens), uniqCombinedMerge(12)(web_visitors), "
        "uniqCombinedMerge(12)(web_sessions), uniqCombinedMerge(12)(openers) "
        "FROM agg_site_hourly"
    ).result_rows
    assert site == [(3, 1, 3, 2, 1)]
    paths = wh.query(
        "SELECT value, sum(pageviews) FROM agg_dim_hourly WHERE dimension = 'path' "
        "GROUP BY value ORDER BY value"
    ).result_rows
    assert paths == [("/a", 1), ("/b", 2)]
    sessions = wh.query(
        "SELECT session_id, day, sum(pageviews) FROM sessions "
        "GROUP BY session_id, day ORDER BY session_id, day"
    ).result_rows
    assert [(s, str(d), n) for s, d, n in sessions] == [
        ("s0", str(days[1]), 1),
        ("s0", str(days[2]), 1),
        ("s1", str(days[1]), 1),
        ("s1", str(days[2]), 0),
    ]


def _rollup_figures(client) -> dict:
    one = lambda sql: client.query(sql).result_rows  # noqa: E731
    return {
        "events": one("SELECT count(), uniqExact(event_id) FROM events"),
        "site": one(
            "SELECT sum(events), sum(pageviews), sum(email_opens), "
            "sum(service_requests), uniqCombinedMerge(12)(visitors), "
            "uniqCombinedMerge(12)(sessions) FROM agg_site_hourly"
        ),
        "paths": one(
            "SELECT value, sum(events), sum(pageviews), uniqCombinedMerge(12)(visitors)"
            " FROM agg_dim_hourly WHERE dimension = 'path' GROUP BY value ORDER BY value"
        ),
        "daily": one(
            "SELECT value, sum(events), uniqCombinedMerge(12)(visitors) FROM agg_dim_daily"
            " WHERE dimension = 'path' GROUP BY value ORDER BY value"
        ),
        "sessions": one(
            "SELECT session_id, min(started), max(ended), sum(events), sum(pageviews),"
            " any(country) FROM sessions GROUP BY session_id ORDER BY session_id"
        ),
    }


def test_web_metric_migrations_keep_rows_and_backfill(ch) -> None:
    # a database as the release before 0010 left it, holding events and their rollups
    migrate(ch, upto=9)
    web, non_web = fixed_visits()
    insert_events(ch, web + non_web)
    before = _rollup_figures(ch)
    assert before["site"][0][4] == 10  # the old visitors: 5 browsing + 3 openers + 2 requesters

    applied = migrate(ch)
    assert applied == [m.name for m in discover() if m.version > 9]
    assert _rollup_figures(ch) == before  # no row lost, no old measure changed or doubled
    one = lambda sql: ch.query(sql).result_rows  # noqa: E731
    assert one(
        "SELECT uniqCombinedMerge(12)(web_visitors), uniqCombinedMerge(12)(web_sessions), "
        "sum(custom_events), sum(outbound_clicks) FROM agg_site_hourly"
    ) == [(5, 5, 1, 1)]
    for table in ("agg_dim_hourly", "agg_dim_daily"):
        assert one(
            f"SELECT value, uniqCombinedMerge(12)(web_visitors) FROM {table} "
            "WHERE dimension = 'path' GROUP BY value ORDER BY value"
        ) == [("/", 3), ("/faq", 1), ("/services/notary", 2), ("/services/notary/apply", 0)]
    assert one(
        "SELECT session_id, sum(web_events), sum(interactions) FROM sessions "
        "GROUP BY session_id HAVING sum(web_events) > 0 ORDER BY session_id"
    ) == [("vA-1", 3, 0), ("vB-1", 4, 0), ("vC-1", 3, 1), ("vD-1", 3, 1), ("vE-1", 1, 0)]
    day = START.date() + timedelta(days=1)
    summary = reports.summary(ch, "m", day, day).data
    assert (
        summary["visitors"],
        summary["visits"],
        summary["bounce_rate"],
        summary["visit_duration"],
    ) == (5, 5, 0.4, 32.0)

    # events landing after the migration go through the re-created views, counted once
    late = fixed_visits()[0][-1] | {
        "event_id": uuid.uuid4(),
        "visitor_id": "vF",
        "session_id": "vF-1",
    }
    insert_events(ch, [late])
    assert one("SELECT sum(events), uniqCombinedMerge(12)(web_visitors) FROM agg_site_hourly") == [
        (before["site"][0][0] + 1, 6)
    ]
    assert reports.summary(ch, "m", day, day).data["bounce_rate"] == 0.5  # A, E, F of 6


def _backfill_figures(client) -> dict:
    one = lambda sql: client.query(sql).result_rows  # noqa: E731
    return {
        "sections": one(
            "SELECT section, sum(events), sum(pageviews), sum(engaged_ms), "
            "sum(section_ms), uniqCombinedMerge(12)(web_visitors) "
            "FROM agg_section_hourly GROUP BY section ORDER BY section"
        ),
        "site": one(
            "SELECT sum(custom_events), sum(outbound_clicks), sum(pageviews), "
            "uniqCombinedMerge(12)(web_visitors) FROM agg_site_hourly"
        ),
        **{
            table: one(
                f"SELECT dimension, sum(custom_events), sum(outbound_clicks), "
                f"sum(pageviews), uniqCombinedMerge(12)(web_visitors) FROM {table} "
                "GROUP BY dimension ORDER BY dimension"
            )
            for table in ("agg_dim_hourly", "agg_dim_daily")
        },
        "sessions": one(
            "SELECT sum(web_events), sum(interactions), sum(pageviews), count() "
            "FROM (SELECT session_id, sum(web_events) AS web_events, "
            "sum(interactions) AS interactions, sum(pageviews) AS pageviews "
            "FROM sessions GROUP BY site_id, day, session_id)"
        ),
    }


def test_an_interrupted_upgrade_reruns_the_backfills_without_doubling(ch) -> None:
    """Killed after a backfill's insert but before the migration was recorded, the upgrade
    runs 0009 / 0011 again: every sum stays what one clean run gives."""
    web, non_web = fixed_visits()
    events = web + non_web + synthetic_events(200)
    clean = fresh_database()
    try:
        migrate(clean, upto=8)
        insert_events(clean, events)
        migrate(clean)
        once = _backfill_figures(clean)
    finally:
        drop(clean)
    assert once["site"][0][:2] == (1, 1) and once["sections"]  # there is something to double

    migrate(ch, upto=8)
    insert_events(ch, events)
    by_version = {m.version: m for m in discover()}

    def rerun(version: int) -> None:
        for statement in by_version[version].statements(Layout.of(ch)):
            ch.command(statement)

    rerun(9)  # interrupted after 0009's insert: not recorded, so it runs again
    migrate(ch, upto=10)
    backfill = by_version[11].statements(Layout.of(ch))
    ch.command(backfill[0])  # interrupted after 0011's first insert
    migrate(ch)
    assert _backfill_figures(ch) == once
    rerun(9)  # and each backfill once more, whole
    rerun(11)
    assert _backfill_figures(ch) == once
