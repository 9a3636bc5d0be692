"""The weekly rollup (migration 0018): agg_dim_weekly equals its days folded by week, and a
one-dimension question read through whole weeks answers what the daily read answered."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.rollup_recount import differences
from tests.warehouse.samples import insert_events
from warehouse import query as query_module
from warehouse.ddl import Layout
from warehouse.migrate import discover, migrate
from warehouse.query import run
from warehouse.question import Query
from warehouse.rollup_ranges import DaySplit, split_days

pytestmark = pytest.mark.clickhouse

TODAY = datetime.now(UTC).date()
FIRST = TODAY - timedelta(days=62)  # within every retention period (shortest: 90 days)
SUMS = ("pageviews", "events", "engaged_seconds", "email_opens", "service_requests")
SKETCHES = ("visitors", "visits", "openers")


def _events(n: int, seed: int = 7) -> list[dict]:
    """n events over the 63 days up to today, two sites; visitors by the hundreds per
    (path, day) and thousands per week, so sketches cross uniqCombined's switch to HLL."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        kind = rng.choice(["pageview"] * 6 + ["engagement", "service_request", "email_open"])
        visitor = f"v{rng.randrange(4000)}"
        rows.append(
            {
                "event_id": uuid.UUID(int=rng.getrandbits(128)),
                "event_type": kind,
                "site_id": rng.choice(["s1", "s1", "s1", "s2"]),
                "ts": datetime.combine(FIRST, datetime.min.time(), UTC)
                + timedelta(minutes=rng.randrange(63 * 24 * 60)),
                "visitor_id": visitor,
                "session_id": f"{visitor}-{rng.randrange(3)}",
                "path": rng.choice(["/", "/faq", "/lawyers"] + [f"/p{i}" for i in range(12)]),
                "country": rng.choice(["AZ", "AZ", "TR", "GE"]),
                "engaged_ms": rng.randrange(60_000) if kind == "engagement" else 0,
                "campaign_id": rng.choice(["spring", "news-12"]) if kind == "email_open" else "",
            }
        )
    return rows


def _daily_only(day_from: date, day_to: date) -> DaySplit:
    """The split before 0018: every whole day from agg_dim_daily."""
    return DaySplit(day_from, day_to, day_to, day_to)


def _ranges() -> list[tuple[date, date, str]]:
    """Ranges shorter than a week, across month ends, starting mid-week, ending today."""
    rng = random.Random(3)
    month_end = next(
        TODAY - timedelta(days=i) for i in range(20, 60) if (TODAY - timedelta(days=i)).day == 1
    )
    fixed = [
        (TODAY - timedelta(days=29), TODAY, "Asia/Baku"),  # the product page's 30 days
        (TODAY - timedelta(days=29), TODAY, "UTC"),
        (TODAY - timedelta(days=3), TODAY, "UTC"),
        (month_end - timedelta(days=9), month_end + timedelta(days=9), "America/New_York"),
        (month_end - timedelta(days=2), month_end + timedelta(days=3), "Asia/Baku"),
        (FIRST, TODAY, "UTC"),
    ]
    drawn = []
    for _ in range(14):
        start = FIRST + timedelta(days=rng.randrange(60))
        end = min(TODAY, start + timedelta(days=rng.randrange(40)))
        drawn.append((start, end, rng.choice(["UTC", "Asia/Baku", "America/New_York"])))
    return fixed + drawn


QUESTIONS = [
    # (metrics, dimension, limit): the pages panel's rollup part, a ranked additive top-N,
    # and every rollup column of the table
    (("visitors", "pageviews", "time_on_page"), "path", 10),
    (("pageviews", "visitors"), "path", 3),
    (("events", "visits", "engaged_seconds", "service_requests"), "country", 100),
    (("email_opens", "openers"), "campaign_id", 100),
]


def test_weekly_reads_answer_as_the_daily_reads_did(wh, monkeypatch) -> None:
    insert_events(wh, _events(30_000))
    assert differences(wh)["agg_dim_weekly"] == 0
    compared = sketch_gap = 0
    for start, end, tz in _ranges():
        for metrics, dimension, limit in QUESTIONS:
            question = Query(
                site="s1",
                metrics=metrics,
                date_from=start,
                date_to=end,
                dimensions=(dimension,),
                limit=limit,
                tz=tz,
            )
            new = run(wh, question)
            with monkeypatch.context() as old_split:
                old_split.setattr(query_module, "split_days", _daily_only)
                old = run(wh, question)
            assert new.source == old.source == "agg_dim_hourly"
            assert [r[0] for r in new.rows] == [r[0] for r in old.rows]  # same rows, same order
            for new_row, old_row in zip(new.rows, old.rows, strict=True):
                for name, a, b in zip(question.dimensions + metrics, new_row, old_row):
                    if name in SKETCHES:
                        sketch_gap = max(sketch_gap, abs(a - b))
                    else:  # sums, and ratios of sums
                        assert a == b, (start, end, tz, metrics, name)
                compared += 1
    assert compared > 300
    # most ranges hold whole weeks (else this compared the daily read with itself)
    assert sum(split_days(a, b + timedelta(days=1)).has_weeks for a, b, _ in _ranges()) >= 10
    assert sketch_gap == 0  # uniqCombined merges gave the same counts in every row


def test_the_pages_question_reads_whole_weeks(wh) -> None:
    insert_events(wh, _events(2_000))
    seen: list[str] = []
    original = wh.query

    def traced(text, *args, **kwargs):
        seen.append(text)
        return original(text, *args, **kwargs)

    wh.query = traced
    question = Query(
        site="s1",
        metrics=("visitors", "pageviews", "scroll_depth"),
        date_from=TODAY - timedelta(days=29),
        date_to=TODAY,
        dimensions=("path",),
        limit=10,
    )
    assert run(wh, question).rows
    assert "FROM agg_dim_weekly" in seen[0] and "FROM agg_dim_daily" in seen[0]


def test_the_migration_backfills_every_week_of_the_daily_rows(ch) -> None:
    migrate(ch, upto=17)
    insert_events(ch, _events(3_000))
    migrate(ch)
    folded = (
        "SELECT site_id, dimension, value, toMonday(day) AS w, sum(pageviews), sum(events), "
        "uniqCombinedMerge(12)(web_visitors) FROM agg_dim_daily GROUP BY ALL ORDER BY ALL"
    )
    stored = (
        "SELECT site_id, dimension, value, week AS w, sum(pageviews), sum(events), "
        "uniqCombinedMerge(12)(web_visitors) FROM agg_dim_weekly GROUP BY ALL ORDER BY ALL"
    )
    weeks = ch.query(stored).result_rows
    assert len({r[3] for r in weeks}) >= 9 and weeks == ch.query(folded).result_rows
    # an upgrade interrupted after the backfill runs it again: nothing counted twice
    backfill = _backfill()
    assert len(backfill) == 1
    for statement in backfill:
        ch.command(statement)
    assert ch.query(stored).result_rows == weeks
    insert_events(ch, _events(500, seed=8))  # and the view carries new days on
    assert differences(ch)["agg_dim_weekly"] == 0


def _backfill() -> list[str]:
    """0018's INSERT statements (the backfill), as the migration runs them on one node."""
    (weekly,) = [m for m in discover() if m.version == 18]
    code = [
        "\n".join(line for line in s.splitlines() if not line.lstrip().startswith("--"))
        for s in weekly.statements(Layout("x"))
    ]
    return [c for c in code if c.lstrip().startswith("INSERT")]
