"""The read path: whitelists, bound parameters, rollup choice, and rollups agreeing with raw
events."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest

from tests.warehouse.samples import START, insert_events, synthetic_events
from warehouse import reports
from warehouse.campaigns import register_send
from warehouse.query import build, choose_source, run
from warehouse.question import Query, QueryError

D1 = START.date()
D3 = D1 + timedelta(days=2)


def q(**kw) -> Query:
    return Query(**{"site": "s1", "metrics": ("pageviews",), "date_from": D1, "date_to": D3, **kw})


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"metrics": ("pageviews; DROP TABLE events",)}, "unknown metric"),
        ({"dimensions": ("country) UNION ALL SELECT",)}, "unknown dimension"),
        ({"filters": (("visitor_id", "v1"),)}, "unknown filter"),
        ({"metrics": ()}, "at least one metric"),
        ({"dimensions": ("hour", "day")}, "at most one time bucket"),
        ({"date_from": D3, "date_to": D1}, "date range"),
        ({"limit": 100_000}, "limit"),
        ({"tz": "Mars/Olympus"}, "time zone"),
    ],
)
def test_refuses_anything_off_the_whitelist(kw, message) -> None:
    with pytest.raises(QueryError, match=message):
        q(**kw)


def test_user_values_are_bound_never_formatted() -> None:
    evil = "AZ' OR 1=1 --"
    sql = build(q(filters=(("country", evil),), dimensions=("country",)))
    assert evil not in sql.text and "OR 1=1" not in sql.text
    assert sql.parameters["f0"] == evil and "{f0:String}" in sql.text
    assert "s1" not in sql.text and sql.parameters["site"] == "s1"


@pytest.mark.parametrize(
    "kw, source",
    [
        ({}, "agg_site_hourly"),
        ({"dimensions": ("hour_of_day",)}, "agg_site_hourly"),
        ({"dimensions": ("country",)}, "agg_dim_hourly"),
        ({"dimensions": ("path",), "filters": (("path", "/faq"),)}, "agg_dim_hourly"),
        # a page's series reads the page's events by path (projection p_path, 0015)
        ({"dimensions": ("day", "path"), "filters": (("path", "/faq"),)}, "events"),
        ({"dimensions": ("hour_of_day",), "filters": (("path", "/faq"),)}, "events"),
        ({"dimensions": ("day",), "filters": (("country", "AZ"),)}, "agg_dim_hourly"),
        ({"dimensions": ("country", "device_type")}, "events"),
        ({"dimensions": ("country",), "filters": (("device_type", "mobile"),)}, "events"),
    ],
)
def test_reads_rollups_when_they_answer(kw, source) -> None:
    assert choose_source(q(**kw)) == source


@pytest.mark.clickhouse
@pytest.mark.parametrize(
    "kw",
    [
        {"metrics": ("pageviews", "visitors", "sessions", "events", "engaged_seconds")},
        {"metrics": ("pageviews", "visitors"), "dimensions": ("country",)},
        {"metrics": ("events", "sessions"), "dimensions": ("day", "path"), "limit": 1000},
        {"metrics": ("visitors", "pageviews"), "filters": (("path", "/"),)},
        {"metrics": ("visitors", "pageviews"), "dimensions": ("hour_of_day",), "limit": 24},
        {"metrics": ("email_opens", "openers"), "dimensions": ("campaign_id",)},
        {
            "metrics": ("service_requests",),
            "dimensions": ("weekday",),
            "filters": (("service_type", "notary"),),
        },
        {"metrics": ("visits", "views_per_visit", "visit_duration", "time_on_page")},
        {"metrics": ("time_on_page", "visits", "views_per_visit"), "dimensions": ("path",)},
        {
            "metrics": ("visit_duration", "custom_events"),
            "dimensions": ("day",),
            "filters": (("country", "AZ"),),
        },
    ],
)
def test_rollups_agree_with_raw_events(wh, kw) -> None:
    insert_events(wh, synthetic_events())
    query = q(**kw)
    rolled, raw = run(wh, query), run(wh, query, source="events")
    assert rolled.source != "events" and raw.source == "events"
    assert rolled.rows and rolled.rows == raw.rows


@pytest.mark.clickhouse
def test_counts_match_the_seeded_events(wh) -> None:
    rows = synthetic_events()
    insert_events(wh, rows + synthetic_events(50, site="other"))
    everything = q(dimensions=("country",), date_to=D3 + timedelta(days=1))
    got = {r["country"]: r["pageviews"] for r in run(wh, everything).records()}
    assert got == Counter(r["country"] for r in rows if r["event_type"] == "pageview")
    one_day = run(wh, q(date_to=D1, metrics=("events",))).records()[0]["events"]
    # D1 in Asia/Baku (UTC+4) ends at 20:00 UTC; the seeded events start at D1 00:00 UTC
    assert one_day == sum(r["ts"].hour < 20 and r["ts"].date() == D1 for r in rows)


@pytest.mark.clickhouse
def test_summary_and_campaign_open_rates(wh) -> None:
    rows = synthetic_events()
    insert_events(wh, rows)
    register_send(wh, "s1", "spring", 100, D1, actor="marketing-bot")
    register_send(wh, "s1", "spring", 50, D1, actor="marketing-bot")
    register_send(wh, "s1", "autumn", 10, D1, actor="marketing-bot")
    end = D3 + timedelta(days=1)  # the seeded events end at D3 24:00 UTC, 04:00 in Baku
    summary = reports.summary(wh, "s1", D1, end).data
    assert summary["pageviews"] == sum(r["event_type"] == "pageview" for r in rows)
    assert 0 <= summary["bounce_rate"] <= 1 and summary["visit_duration"] > 0
    by_id = {c["campaign_id"]: c for c in reports.campaigns(wh, "s1", D1, end).data["campaigns"]}
    openers = len({r["visitor_id"] for r in rows if r["campaign_id"] == "spring"})
    assert by_id["spring"]["sent"] == 150 and by_id["spring"]["unique_opens"] == openers
    assert by_id["spring"]["open_rate"] == round(openers / 150, 4)
    assert by_id["autumn"] == {
        "campaign_id": "autumn",
        "sent": 10,
        "opens": 0,
        "unique_opens": 0,
        "open_rate": 0.0,
        "human_opens": 0,
        "human_unique_opens": 0,
        "human_open_rate": 0.0,
        "machine_opens": 0,
        "opens_by_class": {"human": 0, "image_proxy": 0, "privacy_proxy": 0, "scanner": 0},
    }
    # opens without a class (before migration 0013) count as reader opens, as they did
    assert by_id["spring"]["human_unique_opens"] == openers
    assert by_id["news-12"]["sent"] == 0 and by_id["news-12"]["open_rate"] is None


@pytest.mark.clickhouse
@pytest.mark.parametrize(
    "kw",
    [
        {"metrics": ("pageviews", "visitors"), "dimensions": ("path",), "limit": 2},
        {"metrics": ("events", "sessions"), "dimensions": ("browser",), "limit": 1},
        {"metrics": ("visitors", "pageviews"), "dimensions": ("path",), "limit": 3},
        {"metrics": ("pageviews",), "dimensions": ("path",), "date_from": D3, "date_to": D3},
        {
            "metrics": ("pageviews", "visitors"),
            "dimensions": ("country",),
            "tz": "America/New_York",
        },
        {"metrics": ("pageviews", "visitors"), "dimensions": ("country",), "tz": "UTC"},
    ],
)
def test_daily_split_and_top_n_match_raw_events(wh, kw) -> None:
    # whole UTC days come from agg_dim_daily, partial days from agg_dim_hourly, and a top-N
    # by an additive metric ranks first: none of it may change the answer
    insert_events(wh, synthetic_events(800))
    query = q(**kw)
    rolled, raw = run(wh, query), run(wh, query, source="events")
    assert rolled.source == "agg_dim_hourly" and rolled.rows and rolled.rows == raw.rows


@pytest.mark.parametrize(
    "kw",
    [
        {"date_from": date(1, 1, 1)},
        {"date_to": date(9999, 12, 31)},
        {"date_from": date(2107, 1, 1), "date_to": date(2107, 1, 2)},
    ],
)
def test_dates_outside_the_sane_range_are_refused(kw) -> None:
    # past 2106 ClickHouse's DateTime wraps and would answer with other dates' rows
    with pytest.raises(QueryError, match=r"date range must lie within 2020-01-01..2100-12-31"):
        q(**kw)
