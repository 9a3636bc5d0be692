"""The research mechanisms without a database: noise distribution and scale per metric, the
private threshold's delta, the accountant, and the table formats (CSV / Parquet)."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime

import opendp.prelude as dp
import orjson
import pandas as pd
import pyarrow.parquet as pq

from dashboards.dp import Accountant, Mechanism, Plan, discrete_laplace_variance
from dashboards.tables import HEADER, META_KEY, frame, respond, to_parquet
from mayak.research import read_parquet
from warehouse.ledger import Budget, question_hash

PLAN = Plan(
    ("engaged_seconds", "pageviews"), 1.0, 1e-7, 2, {"engaged_seconds": 120, "pageviews": 5}
)
BIG = {"big": {"visitors": 10_000, "pageviews": 30_000, "engaged_seconds": 900_000}}


def _cdf(k: int, scale: float) -> float:
    """P(X <= k) of the discrete Laplace, P(x) proportional to exp(-|x| / scale)."""
    q = math.exp(-1 / scale)
    if k < 0:
        return q ** (-k) / (1 + q)
    return 1 - q ** (k + 1) / (1 + q)


def test_noise_per_metric_is_the_stated_discrete_laplace() -> None:
    mechanism = Mechanism(PLAN)
    noise = mechanism.noise()
    # scales follow each metric's own sensitivity: max_cells * clip / its share of epsilon
    assert noise["visitors"]["scale"] == 2 * 1 / 0.5
    assert noise["pageviews"]["scale"] == 2 * 5 / 0.25
    assert noise["engaged_seconds"]["scale"] == 2 * 120 / 0.25
    # ... and the library agrees that each piece costs what the plan gives it
    assert mechanism._metric("pageviews", []).map(1) == (0.25, 0.0)
    assert mechanism.selector.map(1)[0] == 0.5
    assert mechanism.cost[0] == 1.0 and 0 < mechanism.cost[1] <= 1e-7
    draws = [mechanism.release(BIG)["big"] for _ in range(3000)]
    for metric in ("visitors", "pageviews", "engaged_seconds"):
        scale = noise[metric]["scale"]
        errors = [d[metric] - BIG["big"][metric] for d in draws]
        n = len(errors)
        mean = sum(errors) / n
        variance = sum(e * e for e in errors) / n
        expected = discrete_laplace_variance(scale)
        assert noise[metric]["variance"] == expected
        assert abs(mean) < 4 * math.sqrt(expected / n), metric
        assert 0.85 * expected < variance < 1.15 * expected, (metric, variance, expected)
        # the whole distribution, not just two moments: Kolmogorov-Smirnov distance
        errors.sort()
        at_most = {e: i + 1 for i, e in enumerate(errors)}  # empirical P(X <= e) * n
        worst = max(abs(count / n - _cdf(e, scale)) for e, count in at_most.items())
        assert worst < 1.95 / math.sqrt(n), (metric, worst)  # KS at the 0.1% level
        # the published 95% interval covers the truth at least 95% of the time
        half = math.floor(noise[metric]["ci95_half_width"])
        coverage = _cdf(half, scale) - _cdf(-half - 1, scale)
        assert coverage >= 0.95
        covered = sum(abs(e) <= half for e in errors) / n
        assert abs(covered - coverage) < 5 * math.sqrt(coverage * (1 - coverage) / n)


def test_a_one_visitor_cell_is_published_no_more_often_than_delta() -> None:
    # a large delta so that the rate is measurable: P(publish) <= e^eps * 0 + delta
    loose = Mechanism(Plan((), 1.0, 0.02, 2))
    solo = {"solo": {"visitors": 1}}
    n = 4000
    published = sum(bool(loose.release(solo)) for _ in range(n))
    assert 0 < published / n <= 0.02 + 3 * math.sqrt(0.02 * 0.98 / n)
    # the default delta: the threshold sits far above any cell a visitor or two can make
    strict = Mechanism(Plan((), 1.0, 1e-7, 2))
    assert strict.threshold > 20
    assert not any(strict.release({"solo": {"visitors": 2}}) for _ in range(1500))


def test_the_threshold_is_the_smallest_meeting_delta() -> None:
    mechanism = Mechanism(PLAN)
    counts = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=dp.i64))
    metric = dp.l01inf_distance(dp.absolute_distance(T=dp.i64))

    def delta(threshold: int) -> float:
        return dp.m.make_laplace_threshold(counts, metric, scale=4.0, threshold=threshold).map(
            (2, 2, 1)
        )[1]

    assert delta(mechanism.threshold) <= 1e-7 < delta(mechanism.threshold - 1)


def test_accountant_composes_with_the_library() -> None:
    total = Accountant.total([(0.5, 1e-7)] * 4 + [(1.0, 0.0)])
    assert math.isclose(total[0], 3.0, rel_tol=1e-9) and total[0] >= 3.0
    assert math.isclose(total[1], 4e-7, rel_tol=1e-9)
    assert Accountant.total([]) == (0.0, 0.0)


PAYLOAD = {
    "columns": ["country", "hour", "visitors", "pageviews"],
    "dimensions": ["country", "hour"],
    "rows": [
        {"country": "AZ", "hour": "2026-03-01 14:00:00", "visitors": 212, "pageviews": -3},
        {"country": "TR", "hour": "2026-03-01 15:00:00", "visitors": 70, "pageviews": 95},
    ],
    "privacy": {"epsilon": 1.0, "noise": {"pageviews": {"scale": 40.0}}},
    "cost": {"epsilon": 1.0, "delta": 1e-7, "repeat": False},
    "budget": {"left_epsilon": 4.0},
}


def test_csv_and_parquet_round_trip_with_types_and_metadata() -> None:
    df = frame(PAYLOAD)
    assert list(df.columns) == PAYLOAD["columns"]
    assert [str(t) for t in df.dtypes] == ["string", "string", "int64", "int64"]
    csv = respond(PAYLOAD, "csv")
    assert csv.media_type == "text/csv"
    back = pd.read_csv(io.BytesIO(csv.body), dtype={"country": "string", "hour": "string"})
    pd.testing.assert_frame_equal(back, df)
    assert orjson.loads(csv.headers[HEADER])["privacy"]["noise"]["pageviews"]["scale"] == 40.0
    data = to_parquet(PAYLOAD)
    table = pq.read_table(io.BytesIO(data))
    assert str(table.schema.field("visitors").type) == "int64"
    assert orjson.loads(table.schema.metadata[META_KEY])["budget"] == {"left_epsilon": 4.0}
    read = read_parquet(data)
    pd.testing.assert_frame_equal(read, df, check_dtype=False)
    assert read["pageviews"].dtype == "int64" and read.attrs["noise"]["pageviews"]["scale"] == 40
    assert read.attrs["cost"]["epsilon"] == 1.0


def test_research_csv_shows_a_formula_like_label_as_text_and_keeps_negative_numbers() -> None:
    hostile = {**PAYLOAD, "rows": [{**PAYLOAD["rows"][0], "country": "=CMD()"}]}
    text = respond(hostile, "csv").body.decode()
    assert "'=CMD()" in text and "\n'=CMD()," in text  # shown as text by a spreadsheet
    assert text.rstrip().endswith(",212,-3")  # a noisy negative count stays a number


def test_budget_periods_are_calendar_periods_in_utc() -> None:
    now = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    utc = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731
    assert Budget("r", 1, 0, "month").window(now) == (utc(2026, 12, 1), utc(2027, 1, 1))
    assert Budget("r", 1, 0, "week").window(now) == (utc(2026, 12, 28), utc(2027, 1, 4))
    assert Budget("r", 1, 0, "day").window(now) == (utc(2026, 12, 31), utc(2027, 1, 1))
    assert question_hash({"a": 1, "b": [2]}) == question_hash({"b": [2], "a": 1})
