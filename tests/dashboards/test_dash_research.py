"""Research output rules without a database: suppression and Laplace noise."""

from __future__ import annotations

import random
from datetime import date

from dashboards.research import publish, research_query
from warehouse.query import Query, Result


def _result() -> Result:
    return Result(["country", "pageviews", "visitors"],
                  [["AZ", 900, 120], ["GE", 40, 9], ["TR", 300, 10]], "agg_dim_hourly")


def test_cells_under_k_are_dropped_and_counted() -> None:
    out = publish(_result(), min_visitors=10)
    assert [r["country"] for r in out["rows"]] == ["AZ", "TR"]
    assert out["suppressed_cells"] == 1 and out["noise"] is None


def test_laplace_noise_changes_counts_but_not_membership() -> None:
    out = publish(_result(), min_visitors=10, epsilon=0.5, rng=random.Random(3))
    assert [r["country"] for r in out["rows"]] == ["AZ", "TR"]
    assert out["noise"] == {"mechanism": "laplace", "epsilon": 0.5}
    assert [r["pageviews"] for r in out["rows"]] != [900, 300]
    assert all(abs(r["pageviews"] - e) < 40 for r, e in zip(out["rows"], [900, 300]))
    noisy = [publish(_result(), 10, 1.0, random.Random(s))["rows"][0]["pageviews"] - 900
             for s in range(2000)]
    assert abs(sum(noisy) / len(noisy)) < 0.2  # centred
    assert 1.7 < sum(x * x for x in noisy) / len(noisy) < 2.3  # variance 2/epsilon^2


def test_research_questions_always_measure_visitors() -> None:
    q = Query(site="s", metrics=("pageviews",), date_from=date(2026, 1, 1),
              date_to=date(2026, 1, 2), dimensions=("country",))
    assert research_query(q).metrics == ("pageviews", "visitors")
