"""Metric definitions (warehouse/metrics.py) on a fixed event set computed by hand: web
metrics count web traffic only, bounce rate and visit duration follow their definitions,
goals, entry/exit pages, scroll depth, and hour buckets labelled in the report time zone."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.warehouse.samples import START, fixed_visits, insert_events
from warehouse import goals, reports
from warehouse.query import run
from warehouse.question import Query

pytestmark = pytest.mark.clickhouse
DAY = START.date() + timedelta(days=1)  # fixed_visits' day; 10:xx UTC is 14:xx in Baku


def _query(**kw) -> Query:
    return Query(**{"site": "m", "metrics": ("pageviews",), "date_from": DAY, "date_to": DAY, **kw})


def _web_figures(wh) -> dict:
    """Every web metric the dashboards show, from the rollups and from raw events."""
    figures = {}
    summary = reports.summary(wh, "m", DAY, DAY).data
    for key in (
        "visitors",
        "visits",
        "pageviews",
        "views_per_visit",
        "engaged_seconds",
        "bounce_rate",
        "visit_duration",
    ):
        figures[key] = summary[key]
    for source in (None, "events"):
        by_path = run(
            wh,
            _query(
                metrics=("pageviews", "visitors", "visits", "time_on_page"), dimensions=("path",)
            ),
            source,
        ).records()
        figures[f"paths/{source}"] = sorted(
            (r["path"], r["pageviews"], r["visitors"], r["visits"], r["time_on_page"])
            for r in by_path
            if r["visitors"]
        )
        totals = run(wh, _query(metrics=("visitors", "visits", "pageviews")), source).records()
        figures[f"totals/{source}"] = totals
    figures["scroll"] = run(wh, _query(metrics=("scroll_depth",))).records()
    figures["entry_exit"] = reports.entry_exit(wh, "m", DAY, DAY).data
    return figures


def test_email_opens_and_service_requests_change_no_web_metric(wh) -> None:
    web, non_web = fixed_visits()
    insert_events(wh, web)
    before = _web_figures(wh)
    insert_events(wh, non_web)
    after = _web_figures(wh)
    assert after == before
    # ...while they have metrics of their own
    own = reports.summary(wh, "m", DAY, DAY).data
    assert (own["email_opens"], own["openers"], own["service_requests"]) == (3, 3, 2)
    assert own["events"] == len(web) + len(non_web)


def test_hand_computed_web_metrics(wh) -> None:
    web, non_web = fixed_visits()
    insert_events(wh, web + non_web)
    summary = reports.summary(wh, "m", DAY, DAY).data
    # visitors / visits: A B C D E (not the 3 openers, not the 2 service requesters)
    assert summary["visitors"] == 5 and summary["visits"] == 5
    # pageviews: A 1 + B 2 + C 1 + D 1 + E 1 = 6; per visit 6 / 5 = 1.2
    assert summary["pageviews"] == 6 and summary["views_per_visit"] == 1.2
    # bounces: A (one pageview, only engagement) and E (one pageview); C has a custom event,
    # D an outbound click, B two pageviews: 2 / 5 = 0.4 (counting every session: 7 / 10)
    assert summary["bounce_rate"] == 0.4
    # engaged time: A 30+10, B 20+60, C 30, D 10, E 0 = 160 s over 5 visits = 32.0 s
    # (A's events span 10 minutes: a timestamp span would say 600 s for A alone)
    assert summary["visit_duration"] == 32.0 and summary["engaged_seconds"] == 160
    assert (summary["custom_events"], summary["outbound_clicks"]) == (1, 1)

    for source in (None, "events"):
        rows = run(
            wh,
            _query(metrics=("pageviews", "visitors", "time_on_page"), dimensions=("path",)),
            source,
        ).records()
        by_path = {r["path"]: (r["pageviews"], r["visitors"], r["time_on_page"]) for r in rows}
        # "/": viewed by A, B, E (the e-mail opens also land on "/": not visitors of it);
        # time on page (30+10+20) / 3 pageviews = 20 s; notary (60+30) / 2 = 45 s
        assert by_path["/"] == (3, 3, 20.0)
        assert by_path["/services/notary"] == (2, 2, 45.0)
        assert by_path["/faq"] == (1, 1, 10.0)
        assert by_path["/services/notary/apply"][:2] == (0, 0)  # service requests only

    # scroll depth: deepest per (visit, page): A/ 80 (not 40), B/ 50, B/notary 100,
    # C/notary 30, D/faq 20 -> 280 / 5 = 56.0; on "/" (80 + 50) / 2 = 65.0
    assert run(wh, _query(metrics=("scroll_depth",))).records() == [{"scroll_depth": 56.0}]
    per_path = run(wh, _query(metrics=("scroll_depth",), dimensions=("path",))).records()
    assert {r["path"]: r["scroll_depth"] for r in per_path}["/"] == 65.0


def test_entry_and_exit_pages(wh) -> None:
    web, non_web = fixed_visits()
    insert_events(wh, web + non_web)
    data = reports.entry_exit(wh, "m", DAY, DAY).data
    # entries: "/" A B E (A and E bounced: 2/3), notary C, faq D
    assert data["entry_pages"] == [
        {"path": "/", "visits": 3, "bounce_rate": 0.6667},
        {"path": "/faq", "visits": 1, "bounce_rate": 0.0},
        {"path": "/services/notary", "visits": 1, "bounce_rate": 0.0},
    ]
    # exits: B leaves from notary; A and E from "/"
    assert data["exit_pages"] == [
        {"path": "/", "visits": 2, "bounce_rate": 1.0},
        {"path": "/services/notary", "visits": 2, "bounce_rate": 0.0},
        {"path": "/faq", "visits": 1, "bounce_rate": 0.0},
    ]


def test_goal_conversions(wh) -> None:
    web, non_web = fixed_visits()
    insert_events(wh, web + non_web)
    wanted = goals.parse_goals(["event:signup", "page:/services/*", "page:/faq", "page:/f_q"])
    data = goals.conversions(wh, "m", DAY, DAY, wanted)
    assert data["visits"] == 5
    # signup: C's visit; /services/*: B and C (pageviews: the service requests' path is not a
    # pageview); "_" is a literal underscore, not a LIKE wildcard
    assert data["goals"] == [
        {
            "goal": "event:signup",
            "conversions": 1,
            "visitors": 1,
            "completions": 1,
            "conversion_rate": 0.2,
        },
        {
            "goal": "page:/services/*",
            "conversions": 2,
            "visitors": 2,
            "completions": 2,
            "conversion_rate": 0.4,
        },
        {
            "goal": "page:/faq",
            "conversions": 1,
            "visitors": 1,
            "completions": 1,
            "conversion_rate": 0.2,
        },
        {
            "goal": "page:/f_q",
            "conversions": 0,
            "visitors": 0,
            "completions": 0,
            "conversion_rate": 0.0,
        },
    ]
    # no goal named: every custom event of the range
    assert [g["goal"] for g in goals.conversions(wh, "m", DAY, DAY, [])["goals"]] == [
        "event:signup"
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("signup", "must look like"),
        ("click:x", "must look like"),
        ("page:services", "starts with"),
        ("event:", "must look like"),
    ],
)
def test_goal_syntax_errors(text, message) -> None:
    with pytest.raises(ValueError, match=message):
        goals.parse_goals([text])


def test_hour_buckets_are_labelled_in_the_report_time_zone(wh) -> None:
    web, _ = fixed_visits()
    insert_events(wh, web)
    for source in (None, "events"):
        rows = run(wh, _query(dimensions=("hour",)), source).records()
        # 10:00 UTC is 14:00 in Baku (UTC+4)
        assert rows == [{"hour": f"{DAY}T14:00:00+04:00", "pageviews": 6}]
    utc = run(wh, _query(dimensions=("hour",), tz="UTC")).records()
    assert utc == [{"hour": f"{DAY}T10:00:00+00:00", "pageviews": 6}]
