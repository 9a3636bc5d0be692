"""Goals read the goal events apart from the visits: same answers.

The reference below is the first SQL of ``goals.conversions`` (one pass over every event of
the range), kept verbatim as the definition; the funnel (``product.funnel``) is checked
against its first SQL too, so a later rewrite of either is held to it. A seeded dataset
(visits over hours and midnights, several inserts, e-mail opens and service requests,
visits reaching no goal) is asked both ways for several ranges, goals, steps and filters.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.warehouse.samples import START
from tests.warehouse.test_wh_entry_exit import _insert, seeded_visits
from warehouse import goals, product
from warehouse.goals import _KINDS, _RANGE, Goal
from warehouse.metrics import WEB
from warehouse.query import filter_sql
from warehouse.question import Query, utc_bounds

pytestmark = pytest.mark.clickhouse


def _reference_goals(client, query: Query, wanted: list[Goal]) -> tuple:
    start, end = utc_bounds(query)
    params: dict = {"site": query.site, "start": start, "end": end}
    where = " AND ".join([_RANGE, *filter_sql(query, params)])
    select = [f"uniqExactIf(session_id, {WEB}) AS visits"]
    for i, goal in enumerate(wanted):
        params[f"g{i}"] = goal.value()
        condition = _KINDS[goal.kind].format(i=i)
        select += [
            f"uniqExactIf(session_id, {condition})",
            f"uniqExactIf(visitor_id, {condition})",
            f"countIf({condition})",
        ]
    sql = f"SELECT {', '.join(select)} FROM events WHERE {where} AND session_id != ''"
    return tuple(client.query(sql, parameters=params).result_rows[0])


def _reference_levels(client, query: Query, steps: list[Goal]) -> dict:
    start, end = utc_bounds(query)
    params: dict = {"site": query.site, "start": start, "end": end}
    conditions = []
    for i, step in enumerate(steps):
        params[f"g{i}"] = step.value()
        conditions.append(_KINDS[step.kind].format(i=i))
    where = " AND ".join([_RANGE, WEB, "session_id != ''", *filter_sql(query, params)])
    per_visit = (
        f"SELECT session_id, windowFunnel(86400)(toDateTime(ts), "
        f"{', '.join(conditions)}) AS level FROM events WHERE {where} "
        f"GROUP BY session_id"
    )
    return dict(
        client.query(
            f"SELECT level, count() FROM ({per_visit}) GROUP BY level", parameters=params
        ).result_rows
    )


def _queries() -> list[Query]:
    first = START.date()
    out = []
    for date_from, date_to, tz in (
        (first, first + timedelta(days=4), "Asia/Baku"),
        (first + timedelta(days=1), first + timedelta(days=1), "Asia/Baku"),
        (first + timedelta(days=2), first + timedelta(days=2), "UTC"),
    ):
        for filters in ((), (("country", "AZ"),), (("path", "/faq"),)):
            out.append(
                Query(
                    site="a",
                    metrics=("visits",),
                    date_from=date_from,
                    date_to=date_to,
                    filters=filters,
                    tz=tz,
                )
            )
    return out


GOALS = [
    [],
    [Goal.parse("event:signup")],
    [Goal.parse("event:signup"), Goal.parse("page:/services/*"), Goal.parse("page:/f_q")],
    [Goal.parse("event:nothing")],
]
STEPS = [
    [Goal.parse("page:/"), Goal.parse("page:/services/*")],
    [Goal.parse("page:/services/*"), Goal.parse("event:signup"), Goal.parse("page:/faq")],
    [Goal.parse("page:/nowhere"), Goal.parse("page:/")],
]


def test_goals_equal_the_one_pass_query(wh) -> None:
    _insert(wh, seeded_visits(seed=17))
    converted = 0
    for query in _queries():
        for wanted in GOALS:
            got = goals.conversions(
                wh, "a", query.date_from, query.date_to, wanted, query.tz, query.filters
            )
            named = wanted or [Goal.parse(g["goal"]) for g in got["goals"]]
            want = _reference_goals(wh, query, named)
            flat = [got["visits"]]
            for g in got["goals"]:
                flat += [g["conversions"], g["visitors"], g["completions"]]
            assert tuple(flat) == want, (query, wanted)
            converted += sum(g["conversions"] for g in got["goals"])
    assert converted >= 50


def test_funnel_equals_the_one_pass_query(wh) -> None:
    _insert(wh, seeded_visits(seed=19))
    reached = 0
    for query in _queries():
        for steps in STEPS:
            levels = _reference_levels(wh, query, steps)
            got = product.funnel(wh, query, steps)
            assert got["visits"] == sum(levels.values()), query
            want = [sum(n for lv, n in levels.items() if lv >= i) for i in range(1, len(steps) + 1)]
            assert [s["visits"] for s in got["steps"]] == want, (query, steps)
            reached += want[-1]
    assert reached >= 10
