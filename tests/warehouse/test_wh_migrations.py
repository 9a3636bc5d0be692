"""Migrations apply on a fresh chDB database, re-run as a no-op, and match the schema snapshot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from warehouse.migrate import discover, migrate

SNAPSHOT = Path(__file__).parent / "snapshots" / "schema.sql"
pytestmark = pytest.mark.clickhouse


def schema(client) -> str:
    """SHOW CREATE of every table and view, database name removed, in name order."""
    names = [r[0] for r in client.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name").result_rows]
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
    rows = [["00000000-0000-0000-0000-00000000000%d" % i, kind, "s1", f"2026-03-0{day} 10:15:00",
             f"v{i % 3}", f"s{i % 2}", "/a" if i % 2 else "/b", "AZ"]
            for i, (kind, day) in enumerate([("pageview", 1), ("pageview", 1), ("pageview", 2),
                                             ("email_open", 2), ("engagement", 2)])]
    wh.insert("events", rows, column_names=["event_id", "event_type", "site_id", "ts", "visitor_id",
                                            "session_id", "path", "country"],
              settings={"date_time_input_format": "best_effort"})
    site = wh.query("SELECT sum(pageviews), sum(email_opens), uniqCombinedMerge(12)(visitors), "
                    "uniqCombinedMerge(12)(sessions), uniqCombinedMerge(12)(openers) FROM agg_site_hourly").result_rows
    assert site == [(3, 1, 3, 2, 1)]
    paths = wh.query("SELECT value, sum(pageviews) FROM agg_dim_hourly WHERE dimension = 'path' "
                     "GROUP BY value ORDER BY value").result_rows
    assert paths == [("/a", 1), ("/b", 2)]
    sessions = wh.query("SELECT session_id, day, sum(pageviews) FROM sessions "
                        "GROUP BY session_id, day ORDER BY session_id, day").result_rows
    assert [(s, str(d), n) for s, d, n in sessions] == [
        ("s0", "2026-03-01", 1), ("s0", "2026-03-02", 1), ("s1", "2026-03-01", 1),
        ("s1", "2026-03-02", 0)]
