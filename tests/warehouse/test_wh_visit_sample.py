"""Per-visit figures of a busy range without filters are estimated from a sample of whole
visits, and say so.

On the seeded visits of test_wh_entry_exit, with the threshold (``visit_sample.SAMPLE_VISITS``)
lowered so that a few thousand visits count as busy: the sample holds whole visits (the same
session ids on ``events`` and ``sessions``), entry/exit pages, goals' visits and conversions
and funnel steps are within 4 standard deviations of the exact answer, a sampled answer names
its share (``sampled``, also through the HTTP API), and below the threshold every answer is
exact and says ``sampled: null``.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import replace
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from dashboards.app import create_app
from dashboards.auth import add_token, tokens_path
from mayak.settings import Settings
from tests.clock import FakeClock
from tests.warehouse.samples import START
from tests.warehouse.test_wh_entry_exit import _insert, seeded_visits
from warehouse import goals, product, reports, visit_sample
from warehouse.goals import Goal
from warehouse.question import Query

pytestmark = pytest.mark.clickhouse

FIRST = START.date()
QUERY = Query(
    site="a", metrics=("visits",), date_from=FIRST, date_to=FIRST + timedelta(days=4), limit=1000
)
STEPS = [Goal.parse(s) for s in ("page:/services/*", "page:/lawyers", "event:signup")]
VISITS = 3000  # about 2,250 on site "a"
LOW = 400  # the lowered threshold: a share of 0.1 or 0.2 of them


def _close(estimate: int, exact: int, share: float) -> bool:
    """Within 4 sigma of a count scaled up from a Bernoulli(share) sample of whole visits."""
    sigma = math.sqrt(exact * (1 - share) / share)
    return abs(estimate - exact) <= 4 * sigma + 1


@pytest.fixture
def seeded(wh):
    _insert(wh, seeded_visits(seed=5, visits=VISITS))
    return wh


def test_below_the_threshold_every_answer_is_exact(seeded) -> None:
    assert visit_sample.sampled_visits(seeded, reports._session_days(QUERY)) == 1.0
    assert product.entry_exit(seeded, QUERY)["sampled"] is None
    assert goals.conversions(seeded, "a", QUERY.date_from, QUERY.date_to, [])["sampled"] is None
    assert product.funnel(seeded, QUERY, STEPS)["sampled"] is None


def test_estimates_are_within_their_error_of_the_exact_answer(seeded, monkeypatch) -> None:
    exact_pages = product.entry_exit(seeded, QUERY)
    exact_goals = goals.conversions(seeded, "a", QUERY.date_from, QUERY.date_to, [])
    named = [Goal.parse("page:/services/*"), Goal.parse("event:signup")]
    exact_named = goals.conversions(seeded, "a", QUERY.date_from, QUERY.date_to, named)
    exact_funnel = product.funnel(seeded, QUERY, STEPS)
    monkeypatch.setattr(visit_sample, "SAMPLE_VISITS", LOW)
    share = visit_sample.sampled_visits(seeded, reports._session_days(QUERY))
    assert share in (0.1, 0.2)

    # whole visits: the events side and the sessions side keep the same session ids
    cut = {"cut": visit_sample.cut(share)}
    on_events, on_sessions = (
        {r[0] for r in seeded.query(f"{sql} {visit_sample.SAMPLED}", parameters=cut).result_rows}
        for sql in (
            "SELECT DISTINCT session_id FROM events WHERE session_id != '' AND",
            "SELECT DISTINCT session_id FROM sessions WHERE",
        )
    )
    assert on_events == on_sessions and 0 < len(on_events) < VISITS / 2

    pages = product.entry_exit(seeded, QUERY)
    assert pages["sampled"] == share
    compared = 0
    for kind in reports.PAGE_KINDS:
        exact = {r["path"]: r for r in exact_pages[kind]}
        for row in pages[kind]:
            want = exact[row["path"]]
            assert _close(row["visits"], want["visits"], share), (kind, row, want)
            bounce_sigma = math.sqrt(0.25 * (1 - share) / (share * want["visits"]))
            assert abs(row["bounce_rate"] - want["bounce_rate"]) <= 4 * bounce_sigma
            compared += 1
    assert compared >= 10

    for got, want in (
        (goals.conversions(seeded, "a", QUERY.date_from, QUERY.date_to, []), exact_goals),
        (goals.conversions(seeded, "a", QUERY.date_from, QUERY.date_to, named), exact_named),
    ):
        assert got["sampled"] == share and _close(got["visits"], want["visits"], share)
        assert [g["goal"] for g in got["goals"]] == [g["goal"] for g in want["goals"]]
        assert got["goals"]
        for g, w in zip(got["goals"], want["goals"]):
            assert g["completions"] == w["completions"]  # counted over every goal event
            assert _close(g["conversions"], w["conversions"], share), (g, w)
            assert abs(g["visitors"] - w["visitors"]) <= 0.05 * w["visitors"] + 1

    funnel = product.funnel(seeded, QUERY, STEPS)
    assert funnel["sampled"] == share and _close(funnel["visits"], exact_funnel["visits"], share)
    for step, want in zip(funnel["steps"], exact_funnel["steps"]):
        assert _close(step["visits"], want["visits"], share), (step, want)
    assert exact_funnel["steps"][1]["visits"] > 0  # the comparison compared something

    # a filtered view is never sampled (it reads only its own visits)
    filtered = replace(QUERY, filters=(("country", "AZ"),))
    assert product.entry_exit(seeded, filtered)["sampled"] is None
    assert product.funnel(seeded, filtered, STEPS)["sampled"] is None


def test_the_http_answers_name_the_sample(seeded, tmp_path, monkeypatch) -> None:
    settings = Settings(data_dir=tmp_path, dashboards_host="127.0.0.1")
    now = START + timedelta(days=5)
    client = TestClient(create_app(settings, seeded, clock=FakeClock(now)))
    client.headers["Authorization"] = f"Bearer {add_token(tokens_path(settings), 'pm', 'product')}"
    params = {"site": "a", "from": str(QUERY.date_from), "to": str(QUERY.date_to)}
    steps = [("step", str(s)) for s in STEPS]

    def answers() -> list[dict]:
        out = []
        for endpoint, extra in (("entry-exit", []), ("goals", []), ("funnel", steps)):
            got = client.get(f"/api/stats/{endpoint}", params=[*params.items(), *extra])
            assert got.status_code == 200, got.text
            out.append(got.json())
        return out

    def csv_shares() -> set[str]:
        """The ``sampled`` column of every CSV answer's rows."""
        out: set[str] = set()
        for endpoint, extra in (("entry-exit", []), ("goals", []), ("funnel", steps)):
            got = client.get(
                f"/api/stats/{endpoint}", params=[*params.items(), *extra, ("format", "csv")]
            )
            rows = list(csv.DictReader(io.StringIO(got.text)))
            assert rows, endpoint
            out |= {r["sampled"] for r in rows}
        return out

    assert [a["sampled"] for a in answers()] == [None, None, None]
    assert csv_shares() == {""}
    monkeypatch.setattr(visit_sample, "SAMPLE_VISITS", LOW)
    shares = [a["sampled"] for a in answers()]
    assert shares[0] in (0.1, 0.2) and shares == [shares[0]] * 3
    assert csv_shares() == {str(shares[0])}  # a saved CSV file says it holds estimates


def test_the_sampled_funnel_reads_the_levels_of_the_exact_one(seeded) -> None:
    """The sampled read (step events only, pages and events apart) with every visit in the
    sample gives the exact read's levels (>= 1) for the same steps, filtered or not."""
    for steps in (STEPS, STEPS[::-1], [Goal.parse("event:signup"), Goal.parse("page:/")]):
        params: dict = {}
        for i, step in enumerate(steps):
            params[f"g{i}"] = step.value()
        conditions = [goals._KINDS[s.kind].format(i=i) for i, s in enumerate(steps)]
        start, end = product.utc_bounds(QUERY)
        params.update({"site": QUERY.site, "start": start, "end": end})
        exact = product._levels(seeded, QUERY, dict(params), conditions)
        every = product._sampled_levels(seeded, params, steps, conditions, 1.0)
        reached = {k: v for k, v in every.items() if k}  # level 0: no first step, not counted
        assert {k: v for k, v in exact.items() if k} == reached and sum(reached.values()) > 50
