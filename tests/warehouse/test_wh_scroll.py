"""Pages with scroll depth: the rollup picks the rows, scroll depth is read for those only.

The reference is the one-pass SQL over raw events (``run(..., "events")``: every metric from
raw events, scroll depth as ``maxMapIf`` over (visit, page)), which is how the pages panel was
answered before. On a seeded dataset (visits crossing hours and midnights, several inserts,
ties in visitors, visits with no engagement, an empty session id) both must give the same
rows, in the same order, for several ranges, time zones, limits, dimensions and filters.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from tests.warehouse.samples import START
from tests.warehouse.test_wh_entry_exit import _insert, seeded_visits
from warehouse.query import run
from warehouse.question import Query

pytestmark = pytest.mark.clickhouse

METRICS = ("visitors", "pageviews", "time_on_page", "scroll_depth")


def _with_scroll(seed: int) -> list[list[dict]]:
    rng = random.Random(seed)
    batches = seeded_visits(seed=seed)
    for batch in batches:
        for row in batch:
            if row["event_type"] == "engagement":
                row["scroll_pct"] = rng.randrange(101)
                if rng.random() < 0.03:
                    row["session_id"] = ""
    return batches


def _ranges() -> list[tuple]:
    first = START.date()
    return [
        (first, first + timedelta(days=4), "Asia/Baku"),
        (first + timedelta(days=1), first + timedelta(days=1), "Asia/Baku"),
        (first + timedelta(days=1), first + timedelta(days=2), "UTC"),
    ]


@pytest.mark.parametrize(
    "metrics, dimensions, filters",
    [
        (METRICS, ("path",), ()),
        (("visitors", "scroll_depth"), ("path",), ()),
        (("pageviews", "scroll_depth", "visitors"), ("path",), ()),
        (METRICS, ("path",), (("path", "/faq"),)),
        (METRICS, (), ()),
        (METRICS, (), (("country", "AZ"),)),
        (METRICS, ("day",), ()),
        (METRICS, ("day", "country"), ()),
        (METRICS, ("hour", "path"), ()),
        (METRICS, ("country",), ()),
    ],
)
def test_scroll_split_equals_the_one_pass_query(wh, metrics, dimensions, filters) -> None:
    _insert(wh, _with_scroll(seed=5))
    compared = 0
    for site in ("a", "b"):
        for date_from, date_to, tz in _ranges():
            for limit in (1000, 3, 1):
                query = Query(
                    site=site,
                    metrics=metrics,
                    date_from=date_from,
                    date_to=date_to,
                    dimensions=dimensions,
                    filters=filters,
                    limit=limit,
                    tz=tz,
                )
                want = run(wh, query, "events")
                got = run(wh, query)
                assert got.source.endswith("+events"), got.source  # the split was taken
                assert got.columns == want.columns
                assert got.rows == want.rows, (site, date_from, tz, limit)
                compared += sum(r[got.columns.index("scroll_depth")] is not None for r in got.rows)
    assert compared >= 10  # scroll depths were compared, not only NULLs


def test_scroll_first_stays_one_pass_and_crossed_filters_split(wh) -> None:
    _insert(wh, _with_scroll(seed=6))
    first = START.date()
    for metrics, filters, source in (
        (("scroll_depth", "visitors"), (), "events"),
        (METRICS, (("country", "AZ"), ("device_type", "mobile")), "events+events"),
        (METRICS, (("country", "TR"), ("path", "/faq")), "events+events"),
    ):
        for limit in (1000, 2):
            query = Query(
                site="a",
                metrics=metrics,
                date_from=first,
                date_to=first + timedelta(days=4),
                dimensions=("path",),
                filters=filters,
                limit=limit,
            )
            got, want = run(wh, query), run(wh, query, "events")
            assert got.source == source and got.rows == want.rows and want.rows
