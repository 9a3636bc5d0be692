"""The attacks of issue 15, run as a curious researcher would: the real API (starlette
TestClient on dashboards/app.py) over the real engine (chDB), with user-level DP on.

The data: 200 visitors from Azerbaijan read /r/divorce (1 pageview, 10 s each), one German
visitor reads it at another hour (1 pageview, 123 s), one Turkish visitor read it the day
before (1 pageview, 77 s). Each attack is repeated by fresh researchers (a researcher who
repeats a question gets the stored answer back): the target's value must not come out more
precisely than the noise the budget buys.
"""

from __future__ import annotations

import math
import statistics
import uuid
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from dashboards.app import create_app
from dashboards.auth import add_token, tokens_path
from dashboards.dp import Accountant
from mayak.research import Client, ResearchError
from mayak.settings import Settings
from tests.clock import clear_of_midnight_utc
from tests.warehouse.samples import START, insert_events

pytestmark = pytest.mark.clickhouse
DAY = START + timedelta(days=5)
TODAY, YESTERDAY = str(DAY.date()), str((DAY - timedelta(days=1)).date())
PAGE = "path:/r/divorce"
RUNS = 40


def _visit(visitor: str, country: str, at, seconds: int) -> list[dict]:
    base = {
        "site_id": "s",
        "visitor_id": visitor,
        "session_id": f"{visitor}-1",
        "path": "/r/divorce",
        "country": country,
    }
    return [
        {**base, "event_id": uuid.uuid4(), "event_type": "pageview", "ts": at},
        {
            **base,
            "event_id": uuid.uuid4(),
            "event_type": "engagement",
            "ts": at + timedelta(seconds=30),
            "engaged_ms": seconds * 1000,
        },
    ]


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, dashboards_host="127.0.0.1")


@pytest.fixture
def api(settings, wh) -> TestClient:
    clear_of_midnight_utc(60)  # budget months and weeks start at midnight UTC
    rows = []
    for i in range(200):
        rows += _visit(f"az{i}", "AZ", DAY + timedelta(hours=6, minutes=i % 50), 10)
    rows += _visit("de", "DE", DAY + timedelta(hours=12), 123)  # 16:00 in Baku, alone
    rows += _visit("tr", "TR", DAY - timedelta(hours=14), 77)  # the day before
    insert_events(wh, rows)
    return TestClient(create_app(settings, wh))


def _researchers(settings, n: int, prefix: str = "r") -> list[dict]:
    tokens = [add_token(tokens_path(settings), f"{prefix}{i}", "researcher") for i in range(n)]
    return [{"Authorization": f"Bearer {token}"} for token in tokens]


def _ask(api, auth, status: int = 200, **params) -> dict:
    query = {
        "site": "s",
        "from": TODAY,
        "to": TODAY,
        "dimensions": "path",
        "metrics": "pageviews,engaged_seconds",
        **params,
    }
    filters = query.pop("filters", [PAGE])
    got = api.get(
        "/api/research/query",
        headers=auth,
        params=[*query.items(), *(("filter", f) for f in filters)],
    )
    assert got.status_code == status, got.text
    return got.json()


def _one(answer: dict) -> dict:
    (row,) = answer["rows"]
    return row


def _spread_at_least_the_noise(estimates: list[float], truth: float, scale: float) -> None:
    """A difference of two independent noisy answers has variance 2 * var(noise)."""
    q = math.exp(-1 / scale)
    expected = math.sqrt(2 * 2 * q / (1 - q) ** 2)
    errors = [e - truth for e in estimates]
    assert statistics.pstdev(errors) > 0.45 * expected, (errors, expected)
    assert sum(abs(e) < 0.5 for e in errors) <= len(errors) // 4  # rarely exact


def test_differencing_does_not_recover_the_german_visitor(settings, api) -> None:
    pageviews, engaged = [], []
    for auth in _researchers(settings, RUNS):
        everyone = _ask(api, auth)
        azerbaijan = _ask(api, auth, filters=[PAGE, "country:AZ"])
        assert "suppressed_cells" not in everyone and "suppressed_cells" not in azerbaijan
        pageviews.append(_one(everyone)["pageviews"] - _one(azerbaijan)["pageviews"])
        engaged.append(_one(everyone)["engaged_seconds"] - _one(azerbaijan)["engaged_seconds"])
    noise = everyone["privacy"]["noise"]
    _spread_at_least_the_noise(pageviews, 1, noise["pageviews"]["scale"])
    _spread_at_least_the_noise(engaged, 123, noise["engaged_seconds"]["scale"])
    assert sum(abs(e - 123) < 10 for e in engaged) <= 4


def test_no_oracle_in_missing_cells(settings, api) -> None:
    for auth in _researchers(settings, RUNS):
        germany = _ask(api, auth, filters=[PAGE, "country:DE"])
        georgia = _ask(api, auth, filters=[PAGE, "country:GE"])
        # a person there or nobody there: the same empty answer, no count of hidden cells
        assert germany["rows"] == georgia["rows"] == []
        assert germany.keys() == georgia.keys() and "suppressed_cells" not in germany
        assert germany["privacy"]["noise"] == georgia["privacy"]["noise"]
    assert germany["privacy"]["delta"] <= 1e-7  # the chance the German cell could appear


def test_date_range_differencing_does_not_recover_the_turkish_visitor(settings, api) -> None:
    visitors, engaged = [], []
    for auth in _researchers(settings, RUNS):
        two_days = _one(_ask(api, auth, **{"from": YESTERDAY}))
        today = _one(_ask(api, auth))
        visitors.append(two_days["visitors"] - today["visitors"])
        engaged.append(two_days["engaged_seconds"] - today["engaged_seconds"])
    noise = _ask(api, auth)["privacy"]["noise"]
    _spread_at_least_the_noise(visitors, 1, noise["visitors"]["scale"])
    _spread_at_least_the_noise(engaged, 77, noise["engaged_seconds"]["scale"])


def test_hour_buckets_publish_no_lone_hour(settings, api) -> None:
    for auth in _researchers(settings, RUNS):
        got = _ask(api, auth, dimensions="hour,path")
        # the Azerbaijani hour only, labelled as the product API labels hours
        assert [r["hour"] for r in got["rows"]] == [f"{TODAY}T10:00:00+04:00"]
        assert got["columns"] == ["hour", "path", "visitors", "engaged_seconds", "pageviews"]
        assert "suppressed_cells" not in got


def test_researchers_reach_no_exact_endpoint(settings, api) -> None:
    # the product role's exact breakdowns (path, ISP, engaged time) are for the portal's team
    (auth,) = _researchers(settings, 1, "ex")
    for path in ("stats/breakdown", "stats/series", "stats/sections", "stats/summary"):
        got = api.get(
            f"/api/{path}",
            headers=auth,
            params={"site": "s", "dimensions": "path,isp", "from": TODAY},
        )
        assert got.status_code == 403, path
    tiny = _ask(api, auth, 400, epsilon="0.001")
    assert "epsilon must be within [0.01, 10.0]" in tiny["error"]


def test_averaging_is_refused_once_the_budget_is_spent(settings, api, wh) -> None:
    (auth,) = _researchers(settings, 1, "avg")
    first = _ask(api, auth, epsilon="0.5")
    # repeating the question, or re-ordering or re-limiting it, gives the stored answer free
    for again in range(20):
        same = _ask(
            api, auth, epsilon="0.5", limit=str(100 - again), metrics="engaged_seconds,pageviews"
        )
        assert same["rows"] == first["rows"] and same["cost"]["epsilon"] == 0.0
    assert same["budget"]["spent_epsilon"] == 0.5
    # new questions (another epsilon each time) spend until the budget is gone
    answered, refusals = [first], []
    for attempt in range(1, 40):
        got = api.get(
            "/api/research/query",
            headers=auth,
            params=[
                ("site", "s"),
                ("from", TODAY),
                ("to", TODAY),
                ("dimensions", "path"),
                ("metrics", "pageviews,engaged_seconds"),
                ("filter", PAGE),
                ("epsilon", str(0.5 - attempt / 1000)),
            ],
        )
        (answered if got.status_code == 200 else refusals).append(got.json())
    assert len(answered) == 10 and len(refusals) == 30  # 5.0 / ~0.5
    assert all("privacy budget spent" in r["error"] for r in refusals)
    assert "mayak research budget set avg0" in refusals[0]["error"]
    # a spent budget still gets the stored answers back, free
    assert _ask(api, auth, epsilon="0.5")["rows"] == first["rows"]
    left = answered[-1]["budget"]
    assert left["spent_epsilon"] <= 5.0 and left["left_epsilon"] < 0.5
    # what the attacker could average: ten answers, so the noise shrinks by sqrt(10) only
    spent = wh.query(
        "SELECT sum(epsilon), count() FROM research_ledger WHERE researcher = 'avg0' AND repeat = 0"
    ).result_rows[0]
    assert spent[1] == 10 and spent[0] <= 5.0


def test_ledger_sums_to_the_accountant_and_refusals_are_free(settings, api, wh) -> None:
    (auth,) = _researchers(settings, 1, "led")
    answers = [
        _ask(api, auth, epsilon=str(e), filters=[PAGE, f"country:{c}"])
        for e, c in ((1.0, "AZ"), (2.5, "TR"), (0.75, "DE"))
    ]
    rows = wh.query(
        "SELECT epsilon, delta FROM research_ledger WHERE researcher = 'led0' "
        "AND repeat = 0 ORDER BY ts"
    ).result_rows
    total = Accountant.total([(e, d) for e, d in rows])
    assert math.isclose(sum(e for e, _ in rows), total[0], rel_tol=1e-9)
    assert math.isclose(sum(d for _, d in rows), total[1], rel_tol=1e-9)
    assert math.isclose(answers[-1]["budget"]["spent_epsilon"], total[0], rel_tol=1e-12)
    assert [round(e, 9) for e, _ in rows] == [1.0, 2.5, 0.75]
    refused = _ask(api, auth, 400, epsilon="1.0")
    assert "privacy budget spent" in refused["error"]
    after = wh.query(
        "SELECT count(), sum(epsilon) FROM research_ledger WHERE researcher = 'led0'"
    ).result_rows[0]
    assert after == (3, sum(e for e, _ in rows))
    still = _ask(api, auth, epsilon="0.75")  # what is left can still be spent
    assert math.isclose(still["budget"]["left_epsilon"], 0.0, abs_tol=1e-9)
    audit = wh.query("SELECT status FROM query_audit WHERE actor = 'led0' ORDER BY ts")
    assert [s for (s,) in audit.result_rows] == [200, 200, 200, 400, 200]


def test_admin_sets_a_budget(settings, api) -> None:
    (auth,) = _researchers(settings, 1, "bud")
    admin = {"Authorization": f"Bearer {add_token(tokens_path(settings), 'root', 'admin')}"}
    assert (
        api.post(
            "/api/admin/research/budget", headers=auth, json={"researcher": "bud0", "epsilon": 9}
        ).status_code
        == 403
    )
    bad = api.post(
        "/api/admin/research/budget",
        headers=admin,
        json={"researcher": "bud0", "epsilon": 1, "period": "year"},
    )
    assert bad.status_code == 400 and "period" in bad.json()["error"]
    done = api.post(
        "/api/admin/research/budget",
        headers=admin,
        json={"researcher": "bud0", "epsilon": 0.6, "delta": 1e-6, "period": "week"},
    )
    assert done.json() == {"researcher": "bud0", "epsilon": 0.6, "delta": 1e-6, "period": "week"}
    assert "left this week" in _ask(api, auth, 400, epsilon="1.0")["error"]
    got = _ask(api, auth, epsilon="0.5")
    assert got["budget"]["epsilon"] == 0.6 and got["budget"]["period"] == "week"
    shown = api.get("/api/admin/research/budgets", headers=admin).json()
    assert shown["budgets"][0]["researcher"] == "bud0"
    assert shown["budgets"][0]["spent_epsilon"] == 0.5 and shown["default"]["epsilon"] == 5.0


def test_python_client_and_formats(settings, api) -> None:
    token = add_token(tokens_path(settings), "cli0", "researcher")
    research = Client(token=token, http=api)
    before = research.budget()
    assert before["left_epsilon"] == 5.0 and before["period"] == "month"
    df = research.query(
        "s",
        metrics=["pageviews", "engaged_seconds"],
        dimensions=["country", "path"],
        filters={"path": "/r/divorce"},
        date_from=TODAY,
        date_to=TODAY,
    )
    assert list(df.columns) == ["country", "path", "visitors", "engaged_seconds", "pageviews"]
    assert [str(t) for t in df.dtypes] == ["string", "string", "int64", "int64", "int64"]
    assert df["country"].tolist() == ["AZ"]
    assert df.attrs["noise"]["pageviews"]["mechanism"] == "discrete_laplace"
    assert df.attrs["cost"]["epsilon"] == 1.0 and df.attrs["budget"]["left_epsilon"] == 4.0
    assert research.budget()["left_epsilon"] == 4.0
    # the same question as JSON and CSV: the stored answer, the same numbers, free
    auth = {"Authorization": f"Bearer {token}"}
    params = {
        "site": "s",
        "from": TODAY,
        "to": TODAY,
        "dimensions": "country,path",
        "metrics": "pageviews,engaged_seconds",
        "filter": PAGE,
    }
    as_json = api.get("/api/research/query", headers=auth, params=params).json()
    assert as_json["rows"] == df.to_dict("records") and as_json["cost"]["repeat"]
    as_csv = api.get("/api/research/query", headers=auth, params={**params, "format": "csv"})
    assert as_csv.text.splitlines()[0] == "country,path,visitors,engaged_seconds,pageviews"
    assert as_csv.headers["content-type"].startswith("text/csv")
    with pytest.raises(ResearchError, match="unknown research metric 'scroll_depth'"):
        research.query("s", metrics=["scroll_depth"], dimensions=["path"])
    bad = api.get("/api/research/query", headers=auth, params={**params, "format": "xlsx"})
    assert bad.status_code == 400 and "format must be one of" in bad.json()["error"]
