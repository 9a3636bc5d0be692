"""The product endpoints against chDB with hand-counted data (``fixed_visits``): comparison
with the previous period, filtered top line and entry/exit pages, CSV answers, the heat map,
realtime, funnels, and the whole view as one archive."""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from dashboards.app import create_app
from dashboards.auth import add_token, tokens_path
from mayak.settings import Settings
from tests.clock import FakeClock
from tests.warehouse.samples import START, fixed_visits, insert_events, insert_rows

pytestmark = pytest.mark.clickhouse
DAY = str((START + timedelta(days=1)).date())  # the fixed visits' day (10:00 UTC = 14:00 Baku)
BEFORE = str(START.date())
ONE_DAY = {"site": "m", "from": DAY, "to": DAY}


@pytest.fixture
def api(tmp_path, wh) -> TestClient:
    web, non_web = fixed_visits("m", day_offset=1)
    earlier, _ = fixed_visits("m", day_offset=0)
    # the day before: only visitors A and E, in visits of their own, both bounces
    earlier = [
        {**e, "session_id": e["session_id"] + "-before"}
        for e in earlier
        if e["visitor_id"] in ("vA", "vE")
    ]
    insert_events(wh, web + non_web + earlier)
    settings = Settings(data_dir=tmp_path, dashboards_host="127.0.0.1")
    now = START + timedelta(days=1, hours=10, minutes=12)
    client = TestClient(create_app(settings, wh, clock=FakeClock(now)))
    client.headers["Authorization"] = f"Bearer {add_token(tokens_path(settings), 'pm', 'product')}"
    return client


def _get(api: TestClient, endpoint: str, **params):
    answer = api.get(f"/api/stats/{endpoint}", params={**ONE_DAY, **params})
    assert answer.status_code == 200, answer.text
    return answer


def _csv(answer) -> list[dict]:
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(answer.text)))


def test_summary_compares_with_the_previous_period(api) -> None:
    got = _get(api, "summary", compare="previous").json()
    assert (got["visitors"], got["visits"], got["pageviews"], got["bounce_rate"]) == (5, 5, 6, 0.4)
    before = got["previous"]
    assert (before["from"], before["to"]) == (BEFORE, BEFORE)
    assert (before["visitors"], before["pageviews"], before["bounce_rate"]) == (2, 2, 1.0)
    assert got["change"]["visitors"] == 1.5  # (5 - 2) / 2
    assert got["change"]["pageviews"] == 2.0
    assert got["change"]["bounce_rate"] == -0.6  # in points: 0.4 - 1.0
    assert "previous" not in _get(api, "summary").json()
    rows = _csv(_get(api, "summary", compare="previous", format="csv"))
    assert [(r["period"], r["visitors"], r["from"]) for r in rows] == [
        ("current", "5", DAY),
        ("previous", "2", BEFORE),
    ]
    assert (
        api.get("/api/stats/summary", params={**ONE_DAY, "compare": "last-year"}).status_code == 400
    )


def test_filtered_summary_counts_the_visits_through_the_filter(api) -> None:
    home = _get(api, "summary", filter="path:/").json()
    # A, B and E viewed /: through that filter each visit has one pageview and no interaction
    assert (home["visitors"], home["pageviews"], home["bounce_rate"]) == (3, 3, 1.0)
    assert home["visit_duration"] == 20.0  # A 40 s, B 20 s, E 0 s on /
    faq = api.get(
        "/api/stats/summary",
        params=[*ONE_DAY.items(), ("filter", "path:/faq"), ("filter", "country:AZ")],
    )
    assert (faq.json()["visitors"], faq.json()["bounce_rate"]) == (1, 0.0)  # D clicked out
    # country and device type are kept per visit: the sampled sessions answer them
    everything = _get(api, "summary").json()
    az = _get(api, "summary", filter="country:AZ").json()
    assert (az["bounce_rate"], az["visit_duration"]) == (0.4, everything["visit_duration"])
    nobody = _get(api, "summary", filter="device_type:mobile").json()
    assert (nobody["visitors"], nobody["bounce_rate"], nobody["visit_duration"]) == (0, None, None)


def test_series_compare_csv_and_heat_map(api) -> None:
    got = _get(api, "series", dimensions="day", metrics="visitors", compare="previous").json()
    assert got["rows"] == [{"day": DAY, "visitors": 5}]
    assert got["previous"] == {
        "from": BEFORE,
        "to": BEFORE,
        "rows": [{"day": BEFORE, "visitors": 2}],
    }
    rows = _csv(
        _get(api, "series", dimensions="day", metrics="visitors", compare="previous", format="csv")
    )
    assert rows == [
        {"period": "current", "day": DAY, "visitors": "5"},
        {"period": "previous", "day": BEFORE, "visitors": "2"},
    ]
    heat = _get(
        api, "series", dimensions="weekday,hour_of_day", metrics="visitors", limit="200"
    ).json()["rows"]
    weekday = (START + timedelta(days=1)).isoweekday()
    assert heat == [{"weekday": weekday, "hour_of_day": 14, "visitors": 5}]  # 10:00 UTC
    assert (
        api.get("/api/stats/series", params={**ONE_DAY, "dimensions": "hour,day"}).status_code
        == 400
    )


def test_breakdown_and_entry_exit_as_csv_and_filtered(api) -> None:
    rows = _csv(_get(api, "breakdown", dimensions="path", metrics="visitors", format="csv"))
    # the service requests' page has no web visitor
    assert {r["path"]: r["visitors"] for r in rows} == {
        "/": "3",
        "/services/notary": "2",
        "/faq": "1",
        "/services/notary/apply": "0",
    }
    assert (
        api.get(
            "/api/stats/breakdown", params={**ONE_DAY, "dimensions": "path", "format": "xml"}
        ).status_code
        == 400
    )
    plain = _get(api, "entry-exit").json()
    filtered = _get(api, "entry-exit", filter="country:AZ").json()  # raw events, same visits
    assert filtered["entry_pages"] == plain["entry_pages"]
    assert filtered["exit_pages"] == plain["exit_pages"]
    assert {r["path"]: r["visits"] for r in filtered["exit_pages"]} == {
        "/": 2,
        "/services/notary": 2,
        "/faq": 1,
    }
    only_b = _get(api, "entry-exit", filter="path:/services/notary").json()
    assert {r["path"]: r["visits"] for r in only_b["entry_pages"]} == {"/services/notary": 2}
    rows = _csv(_get(api, "entry-exit", format="csv"))
    assert {r["kind"] for r in rows} == {"entry", "exit"}


def test_realtime_counts_the_last_five_minutes(api) -> None:
    got = api.get("/api/stats/realtime", params={"site": "m"}).json()
    # 10:07..10:12: the events at 10:10 (A, B, C, D); the e-mail opens are not web traffic
    assert got["visitors"] == 4 and got["minutes"] == 5
    assert got["pages"] == [
        {"path": "/services/notary", "visitors": 2},
        {"path": "/", "visitors": 1},
        {"path": "/faq", "visitors": 1},
    ]


def test_funnel_counts_ordered_steps_within_a_visit(api) -> None:
    def funnel(*steps: str) -> dict:
        return api.get(
            "/api/stats/funnel", params=[*ONE_DAY.items(), *(("step", s) for s in steps)]
        ).json()

    got = funnel("page:/", "page:/services/notary")
    assert got["visits"] == 5
    assert [(s["visits"], s["from_first"]) for s in got["steps"]] == [(3, 1.0), (1, 0.3333)]
    assert [s["visits"] for s in funnel("page:/services/notary", "page:/")["steps"]] == [2, 0]
    signup = funnel("page:/services/*", "event:signup")["steps"]
    assert [(s["goal"], s["visits"], s["from_previous"]) for s in signup] == [
        ("page:/services/*", 2, None),
        ("event:signup", 1, 0.5),
    ]
    mobile = api.get(
        "/api/stats/funnel",
        params=[
            *ONE_DAY.items(),
            ("step", "page:/"),
            ("step", "page:/faq"),
            ("filter", "device_type:mobile"),
        ],
    ).json()
    assert mobile["visits"] == 0 and [s["visits"] for s in mobile["steps"]] == [0, 0]
    bad = api.get("/api/stats/funnel", params={**ONE_DAY, "step": "page:/"})
    assert bad.status_code == 400 and "2 to 8 steps" in bad.json()["error"]


def test_the_whole_view_as_one_archive(api) -> None:
    answer = _get(api, "export", filter="device_type:desktop")
    assert answer.headers["content-type"] == "application/zip"
    files = zipfile.ZipFile(io.BytesIO(answer.content))
    names = set(files.namelist())
    assert {
        "summary.csv",
        "series.csv",
        "entry_pages.csv",
        "pages.csv",
        "countries.csv",
        "services.csv",
    } <= names
    summary = list(csv.DictReader(io.StringIO(files.read("summary.csv").decode())))
    assert summary[0]["visitors"] == "5"
    pages = list(csv.DictReader(io.StringIO(files.read("pages.csv").decode())))
    assert {p["path"] for p in pages if p["visitors"] != "0"} == {"/", "/services/notary", "/faq"}


def test_goals_through_filters_and_as_csv(api) -> None:
    notary = _get(api, "goals", goal="event:signup", filter="path:/services/notary").json()
    # B and C had events on that page; C signed up there
    assert (
        notary["visits"],
        notary["goals"][0]["conversions"],
        notary["goals"][0]["conversion_rate"],
    ) == (2, 1, 0.5)
    home = _get(api, "goals", goal="event:signup", filter="path:/").json()
    assert (home["visits"], home["goals"][0]["conversions"]) == (3, 0)
    rows = _csv(_get(api, "goals", format="csv"))  # no goal named: the custom events seen
    assert [(r["goal"], r["conversions"]) for r in rows] == [("event:signup", "1")]


def test_prop_keys_and_prop_filters(tmp_path, wh) -> None:
    web, _ = fixed_visits("m", day_offset=1)
    signup = next(e for e in web if e["event_type"] == "custom")
    extra = {**signup, "event_id": uuid.uuid4(), "visitor_id": "vF", "session_id": "vF-1"}
    columns = [
        "event_id",
        "event_type",
        "site_id",
        "ts",
        "visitor_id",
        "session_id",
        "path",
        "event_name",
    ]
    insert_rows(
        wh,
        [
            {**{c: e[c] for c in columns}, "props": props}
            for e, props in ((signup, {"plan": "pro", "from": "ad"}), (extra, {"plan": "free"}))
        ],
    )
    settings = Settings(data_dir=tmp_path, dashboards_host="127.0.0.1")
    api = TestClient(create_app(settings, wh))
    api.headers["Authorization"] = f"Bearer {add_token(tokens_path(settings), 'pm', 'product')}"
    keys = _get(api, "breakdown", dimensions="prop_key", metrics="events").json()["rows"]
    assert keys == [{"prop_key": "plan", "events": 2}, {"prop_key": "from", "events": 1}]
    pro = _get(
        api, "breakdown", dimensions="event_name", metrics="events,visitors", filter="prop:plan:pro"
    ).json()["rows"]
    assert pro == [{"event_name": "signup", "events": 1, "visitors": 1}]


def test_visitor_text_in_a_csv_is_shown_not_run_as_a_formula(api, wh) -> None:
    """A visitor chooses the page path (and event names, campaign and property values); a
    product manager opens the CSV in a spreadsheet. Text a spreadsheet would run as a
    formula gets a leading ' (OWASP CSV injection); the JSON answer is unchanged."""
    at = START + timedelta(days=1, hours=10, minutes=5)
    hostile = ['=HYPERLINK("https://evil.example","x")', "@SUM(1+1)", "+1", "-2+3"]
    insert_events(
        wh,
        [
            {
                "event_id": uuid.uuid4(),
                "event_type": "pageview",
                "site_id": "m",
                "ts": at,
                "visitor_id": f"evil{i}",
                "session_id": f"evil{i}-1",
                "path": path,
            }
            for i, path in enumerate(hostile)
        ],
    )
    rows = _csv(_get(api, "breakdown", dimensions="path", metrics="visitors", format="csv"))
    shown = {r["path"] for r in rows}
    assert {"'" + path for path in hostile} <= shown
    assert not any(p.startswith(("=", "+", "-", "@")) for p in shown)
    assert "/services/notary" in shown  # ordinary paths as they are
    as_json = _get(api, "breakdown", dimensions="path", metrics="visitors").json()
    assert set(hostile) <= {r["path"] for r in as_json["rows"]}
