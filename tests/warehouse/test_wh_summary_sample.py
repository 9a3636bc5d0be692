"""The summary's bounce rate and visit duration follow the one sampling rule (``visit_sample``)
and say so.

On the seeded visits of test_wh_entry_exit (about 2,250 web visits of site "a"), with the
threshold lowered so that they count as busy: the unfiltered summary's bounce rate and visit
duration are estimated from the same whole visits as entry/exit pages (``sampled`` names the
share, in the JSON and the CSV answer), within 4 standard deviations of the exact figures;
below the threshold, and for every filtered view, they are exact and ``sampled`` is null. The
exact read answers what the first definition (the per-session SQL, verbatim) answers.
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
from tests.warehouse.test_wh_visit_sample import LOW, QUERY, VISITS
from warehouse import product, reports, visit_sample
from warehouse.metrics import BOUNCE, VISIT

pytestmark = pytest.mark.clickhouse

# the per-visit figures as first defined (reports._VISITS without its SAMPLE clause)
_REFERENCE = f"""
SELECT countIf({VISIT}), countIf({BOUNCE}), avgIf(engaged_ms / 1000, {VISIT}),
       stddevPopIf(engaged_ms / 1000, {VISIT})
FROM (
    SELECT session_id, sum(pageviews) AS pageviews, sum(web_events) AS web_events,
           sum(interactions) AS interactions, sum(engaged_ms) AS engaged_ms
    FROM sessions
    WHERE site_id = {{site:String}} AND day >= {{from:Date}} AND day <= {{to:Date}} SAMPLED
    GROUP BY session_id
    HAVING min(started) >= {{start:DateTime64(3, 'UTC')}}
       AND min(started) < {{end:DateTime64(3, 'UTC')}}
)
"""


@pytest.fixture
def seeded(wh):
    _insert(wh, seeded_visits(seed=5, visits=VISITS))
    return wh


def _reference(client, share: float = 1.0) -> tuple[int, float, float, float]:
    """Visits, bounce rate, mean and spread of the engaged seconds (of the sample of ``share``)."""
    params = reports._session_days(QUERY)
    sql = _REFERENCE.replace("SAMPLED", f"AND {visit_sample.SAMPLED}" if share < 1 else "")
    visits, bounces, mean, spread = client.query(
        sql, parameters={**params, "cut": visit_sample.cut(share)}
    ).result_rows[0]
    return visits, bounces / visits, mean, spread


def test_exact_below_the_threshold_and_as_first_defined(seeded) -> None:
    visits, bounce_rate, mean, _ = _reference(seeded)
    assert visits > 2000
    top = product.summary(seeded, QUERY)
    assert top["sampled"] is None
    assert (top["bounce_rate"], top["visit_duration"]) == (round(bounce_rate, 4), round(mean, 1))
    compared = product.compared_summary(seeded, QUERY)
    assert compared["sampled"] is None and compared["previous"]["sampled"] is None
    assert "sampled" not in compared["change"]


def test_a_busy_range_is_estimated_within_its_error_and_says_so(seeded, monkeypatch) -> None:
    visits, bounce_rate, mean, spread = _reference(seeded)
    monkeypatch.setattr(visit_sample, "SAMPLE_VISITS", LOW)
    share = visit_sample.sampled_visits(seeded, reports._session_days(QUERY))
    assert share in (0.1, 0.2)
    top = product.summary(seeded, QUERY)
    assert top["sampled"] == share == product.entry_exit(seeded, QUERY)["sampled"]
    # the same whole visits as entry/exit and the funnel: those below the cut
    _, sample_bounce, sample_mean, _ = _reference(seeded, share)
    assert (top["bounce_rate"], top["visit_duration"]) == (
        round(sample_bounce, 4),
        round(sample_mean, 1),
    )
    # a Bernoulli(share) sample of whole visits: 4 sigma (finite population) and the rounding
    shrink = math.sqrt((1 - share) / (share * visits))
    assert (
        abs(top["bounce_rate"] - bounce_rate)
        <= 4 * math.sqrt(bounce_rate * (1 - bounce_rate)) * shrink + 0.0001
    )
    assert abs(top["visit_duration"] - mean) <= 4 * spread * shrink + 0.05
    assert top["bounce_rate"] != round(bounce_rate, 4) or top["visit_duration"] != round(mean, 1)

    # the totals are not per-visit figures: the same as without the sample
    monkeypatch.undo()
    exact = product.summary(seeded, QUERY)
    monkeypatch.setattr(visit_sample, "SAMPLE_VISITS", LOW)
    for name in reports.SUMMARY_METRICS:
        assert top[name] == exact[name], name

    # a filtered view reads only its own visits: exact, also through the sessions table
    for filters in ((("country", "AZ"),), (("path", "/"),)):
        filtered = replace(QUERY, filters=filters)
        got = product.summary(seeded, filtered)
        assert got["sampled"] is None, filters
        monkeypatch.undo()
        assert product.summary(seeded, filtered) == got
        monkeypatch.setattr(visit_sample, "SAMPLE_VISITS", LOW)

    compared = product.compared_summary(seeded, QUERY)
    assert compared["sampled"] == share and "sampled" not in compared["change"]


def test_the_summary_answer_and_csv_name_the_sample(seeded, tmp_path, monkeypatch) -> None:
    settings = Settings(data_dir=tmp_path, dashboards_host="127.0.0.1")
    now = START + timedelta(days=5)
    client = TestClient(create_app(settings, seeded, clock=FakeClock(now)))
    client.headers["Authorization"] = f"Bearer {add_token(tokens_path(settings), 'pm', 'product')}"
    params = {"site": "a", "from": str(QUERY.date_from), "to": str(QUERY.date_to)}

    def answer(**extra: str) -> dict:
        got = client.get("/api/stats/summary", params={**params, **extra})
        assert got.status_code == 200, got.text
        return got.json()

    def csv_rows(**extra: str) -> list[dict]:
        got = client.get("/api/stats/summary", params={**params, **extra, "format": "csv"})
        return list(csv.DictReader(io.StringIO(got.text)))

    assert answer()["sampled"] is None
    assert [r["sampled"] for r in csv_rows(compare="previous")] == ["", ""]
    monkeypatch.setattr(visit_sample, "SAMPLE_VISITS", LOW)
    share = answer()["sampled"]
    assert share in (0.1, 0.2)
    # the previous period (before the seeded days) is empty: exact
    assert [(r["period"], r["sampled"]) for r in csv_rows(compare="previous")] == [
        ("current", str(share)),
        ("previous", ""),
    ]
    assert answer(filter="country:AZ")["sampled"] is None
