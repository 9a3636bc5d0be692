"""Retention per purpose: the deployed TTLs match retention.toml, and TTL removes exactly the
expired rows (back-dated rows, then a merge; rules with WHERE apply at merge time)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.warehouse.samples import insert_rows
from warehouse import retention
from warehouse.retention import load_schedule

NOW = datetime.now(UTC).replace(microsecond=0)
# ages are read back against NOW, not now(): a run that crosses midnight after import would
# otherwise count one day more (CI saw 31 for 30)
NOW_SQL = f"toDateTime('{NOW:%Y-%m-%d %H:%M:%S}', 'UTC')"


def test_schedule_defaults_per_purpose() -> None:
    schedule = load_schedule()
    keep = {name: p["keep"] for name, p in schedule.purposes.items()}
    assert keep["product"] == "13 MONTH" and keep["email_opens"] == "90 DAY"
    assert keep["failed"] == "30 DAY" and keep["security"] == "3 YEAR"
    assert keep["aggregates"] == "5 YEAR"
    assert schedule.ttl("failed_events") == "toDateTime(failed_at) + INTERVAL 30 DAY"
    events = schedule.ttl("events")
    assert "INTERVAL 90 DAY DELETE WHERE event_type = 'email_open'" in events
    assert (
        "INTERVAL 13 MONTH DELETE WHERE NOT (event_type = 'email_open') "
        "AND NOT (event_type = 'service_request')"
    ) in events


@pytest.mark.parametrize(
    "bad, message",
    [
        ('[purposes.p]\nkeep = "13 MONTHS"\n', "keep must look like"),
        (
            '[purposes.p]\nkeep = "1 DAY"\n[tables.t]\ntime = "d"\nrules = [{ purpose = "q" }]\n',
            "unknown purpose",
        ),
        (
            '[purposes.p]\nkeep = "1 DAY"\n[tables.t]\ntime = "d"\n'
            'rules = [{ purpose = "p", where = "x" }]\n',
            "exactly one rule",
        ),
    ],
)
def test_schedule_rejects_mistakes(tmp_path: Path, bad: str, message: str) -> None:
    path = tmp_path / "retention.toml"
    path.write_text(bad)
    with pytest.raises(ValueError, match=message):
        load_schedule(path)


@pytest.mark.clickhouse
def test_every_merge_tree_table_has_the_scheduled_ttl(wh) -> None:
    assert retention.check(wh) == []
    tables = set(retention.merge_tree_tables(wh))
    schedule = load_schedule()
    assert tables == set(schedule.tables) | set(schedule.exempt)


@pytest.mark.clickhouse
def test_check_reports_a_drifted_ttl(wh) -> None:
    wh.command("ALTER TABLE failed_events MODIFY TTL toDateTime(failed_at) + INTERVAL 60 DAY")
    wh.command("CREATE TABLE stray (d Date) ENGINE = MergeTree ORDER BY d")
    problems = retention.check(wh)
    assert len(problems) == 2
    assert problems[0].startswith("failed_events: TTL is") and "60" in problems[0]
    assert problems[1] == "stray: MergeTree table missing from the retention schedule"


def _event(kind: str, age_days: int, site: str = "s1") -> dict:
    return {
        "event_id": uuid.uuid4(),
        "event_type": kind,
        "site_id": site,
        "ts": NOW - timedelta(days=age_days),
        "visitor_id": f"{kind}:{age_days}",
        "session_id": f"{kind}:{age_days}",
        "path": f"/{kind}/{age_days}",
    }


@pytest.mark.clickhouse
def test_ttl_removes_exactly_the_expired_rows(wh) -> None:
    # ages straddle each period: 90 days, 13 months (~395 d), 3 years (~1096 d), 5 years
    ages = [30, 89, 92, 380, 410, 1080, 1110, 1800, 1850]
    rows = [
        _event(kind, age) for kind in ("email_open", "service_request", "pageview") for age in ages
    ]
    insert_rows(wh, rows)
    insert_rows(
        wh,
        [
            {"failed_at": NOW - timedelta(days=age), "reason": "schema", "event_id": str(age)}
            for age in (1, 29, 31, 400)
        ],
        "failed_events",
    )
    for table in ("events", "failed_events", "sessions", "agg_site_hourly", "agg_dim_hourly"):
        wh.command(f"OPTIMIZE TABLE {table} FINAL")

    kept = {
        tuple(r)
        for r in wh.query(
            f"SELECT event_type, intDiv(dateDiff('second', ts, {NOW_SQL}), 86400) FROM events"
        ).result_rows
    }
    assert kept == {
        ("email_open", 30),
        ("email_open", 89),
        ("service_request", 30),
        ("service_request", 89),
        ("service_request", 92),
        ("service_request", 380),
        ("service_request", 410),
        ("service_request", 1080),
        ("pageview", 30),
        ("pageview", 89),
        ("pageview", 92),
        ("pageview", 380),
    }
    failed = sorted(int(r[0]) for r in wh.query("SELECT event_id FROM failed_events").result_rows)
    assert failed == [1, 29]
    # product sessions follow events' 13 months; anonymous aggregates outlive them (5 years)
    session_ages = {
        r[0]
        for r in wh.query(
            f"SELECT dateDiff('day', day, toDate({NOW_SQL})) FROM sessions "
            "WHERE session_id LIKE 'pageview:%'"
        ).result_rows
    }
    assert session_ages == {30, 89, 92, 380}
    hours = {
        r[0]
        for r in wh.query(
            f"SELECT intDiv(dateDiff('second', hour, {NOW_SQL}), 86400) FROM agg_site_hourly "
            "WHERE events > 0"
        ).result_rows
    }
    assert hours == set(ages) - {1850}
