"""The API's metric endpoints against chDB: goals, entry/exit pages, hour labels in the
report time zone, and an unknown site answered with a 404 that names the known sites."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from starlette.testclient import TestClient

from dashboards.app import create_app
from dashboards.auth import add_token, tokens_path
from mayak.settings import Settings
from tests.warehouse.samples import START, fixed_visits, insert_events

pytestmark = pytest.mark.clickhouse
DAY = str(START.date() + timedelta(days=1))
RANGE = {"site": "m", "from": DAY, "to": DAY}


@pytest.fixture
def api(tmp_path, wh) -> TestClient:
    web, non_web = fixed_visits()
    insert_events(wh, web + non_web)
    insert_events(wh, fixed_visits(site="other")[0])
    settings = Settings(data_dir=tmp_path, dashboards_host="127.0.0.1")
    token = add_token(tokens_path(settings), "pm", "product")
    return TestClient(create_app(settings, wh), headers={"Authorization": f"Bearer {token}"})


def _audit(wh) -> list[tuple]:
    return wh.query("SELECT endpoint, status FROM query_audit ORDER BY ts").result_rows


def test_unknown_site_is_a_404_naming_the_sites(api, wh) -> None:
    for path, extra in (
        ("stats/summary", {}),
        ("stats/breakdown", {"dimensions": "path"}),
        ("stats/goals", {}),
        ("research/query", {}),
    ):
        got = api.get(f"/api/{path}", params={**RANGE, "site": "nope", **extra})
        if path == "research/query":
            assert got.status_code == 403  # the role check comes first
            continue
        assert got.status_code == 404, path
        assert got.json() == {"error": "unknown site 'nope'; sites with data: m, other"}
    assert ("stats/summary", 404) in _audit(wh)
    assert api.get("/api/stats/summary", params=RANGE).status_code == 200


def test_goals_endpoint(api) -> None:
    got = api.get(
        "/api/stats/goals",
        params=[*RANGE.items(), ("goal", "event:signup"), ("goal", "page:/services/*")],
    )
    assert got.status_code == 200
    body = got.json()
    assert body["visits"] == 5
    assert [(g["goal"], g["conversions"], g["conversion_rate"]) for g in body["goals"]] == [
        ("event:signup", 1, 0.2),
        ("page:/services/*", 2, 0.4),
    ]
    bad = api.get("/api/stats/goals", params={**RANGE, "goal": "signup"})
    assert bad.status_code == 400 and "event:<name>" in bad.json()["error"]


def test_entry_exit_endpoint(api) -> None:
    body = api.get("/api/stats/entry-exit", params=RANGE).json()
    assert body["entry_pages"][0] == {"path": "/", "visits": 3, "bounce_rate": 0.6667}
    assert {p["path"] for p in body["exit_pages"]} == {"/", "/services/notary", "/faq"}


def test_hour_series_in_report_time_zone(api) -> None:
    body = api.get("/api/stats/series", params={**RANGE, "dimensions": "hour"}).json()
    assert body["rows"] == [{"hour": f"{DAY}T14:00:00+04:00", "pageviews": 6, "visitors": 5}]


def test_research_counts_web_visitors_of_a_path(tmp_path, wh) -> None:
    from warehouse.bounded import bounded_cells
    from warehouse.question import Query

    web, non_web = fixed_visits()
    insert_events(wh, web + non_web)
    query = Query(
        site="m",
        metrics=("visitors",),
        date_from=date.fromisoformat(RANGE["from"]),
        date_to=date.fromisoformat(RANGE["to"]),
        dimensions=("path",),
    )
    # the exact, bounded sums the private release starts from
    cells = bounded_cells(wh, query, ("visitors", "pageviews"), 2, {"pageviews": 5})
    # "/" was viewed by A, B and E; the three e-mail opens that land on "/" are not visitors
    assert cells['["/"]'] == {"visitors": 3, "pageviews": 3}
    settings = Settings(data_dir=tmp_path, dashboards_host="127.0.0.1")
    token = add_token(tokens_path(settings), "rza", "researcher")
    api = TestClient(create_app(settings, wh))
    auth = {"Authorization": f"Bearer {token}"}
    ratio = api.get(
        "/api/research/query",
        headers=auth,
        params={**RANGE, "dimensions": "path", "metrics": "scroll_depth"},
    )
    assert ratio.status_code == 400 and "counts only" in ratio.json()["error"]
    # a mistyped site is a 404 before anything is spent or recorded
    typo = api.get(
        "/api/research/query", headers=auth, params={**RANGE, "site": "nope", "dimensions": "path"}
    )
    assert typo.status_code == 404 and "sites with data: m" in typo.json()["error"]
    assert wh.query("SELECT count() FROM research_ledger").result_rows[0][0] == 0
    spent = api.get("/api/research/budget", headers=auth).json()
    assert spent["spent_epsilon"] == 0, spent


def test_a_known_site_is_checked_once_per_process(wh) -> None:
    from warehouse.sites import SiteCheck, UnknownSite

    insert_events(wh, fixed_visits()[0])
    asked: list[str] = []

    class Counting:
        def query(self, sql, **kw):
            asked.append(sql)
            return wh.query(sql, **kw)

    check = SiteCheck(Counting())
    check("m")
    check("m")
    assert len(asked) == 1  # the second call for a known site asks nothing
    with pytest.raises(UnknownSite, match="sites with data: m"):
        check("nope")
    with pytest.raises(UnknownSite):
        check("nope")  # an unknown site is asked again: its first event may land meanwhile
