"""Migration 0017: a view filtered by country and device type reads events and sessions by
those columns (projections ``p_visit``).

Such a view's raw reads use the projections (the plan names them), answer what the tables'
own order answers (before and after the sessions' parts are merged), and erasure's DELETE
leaves nothing readable either way.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.warehouse.samples import START, WithSettings
from tests.warehouse.test_wh_entry_exit import _insert, seeded_visits
from warehouse import goals, product, reports, visit_sample
from warehouse.goals import Goal
from warehouse.query import build, run
from warehouse.question import Query

pytestmark = pytest.mark.clickhouse

USE = {"force_optimize_projection": 1}
SKIP = {"optimize_use_projections": 0}
VIEWS = [
    (("country", "AZ"), ("device_type", "mobile")),
    (("country", "TR"),),
    (("device_type", "desktop"), ("country", "GE")),
    (("country", "NO"), ("device_type", "mobile")),  # nothing to read
]


def _view(filters: tuple, limit: int = 1000) -> Query:
    first = START.date()
    return Query(
        site="a",
        metrics=("visitors", "pageviews"),
        date_from=first,
        date_to=first + timedelta(days=4),
        filters=filters,
        limit=limit,
    )


def _answers(client, query: Query) -> list:
    steps = [Goal.parse("page:/services/*"), Goal.parse("page:/faq")]
    return [
        run(client, Query(**{**query.__dict__, "dimensions": ("path",)})).rows,
        run(client, Query(**{**query.__dict__, "dimensions": ("day",)})).rows,
        product.summary(client, query),
        product.entry_exit(client, query),
        product.funnel(client, query, steps),
        goals.conversions(client, "a", query.date_from, query.date_to, [], filters=query.filters),
    ]


def _fill(wh, seed: int) -> None:
    _insert(wh, seeded_visits(seed=seed))
    # enough visits of every country and device over the same days that reading by country
    # and device reads fewer granules than reading the range in date order
    wh.command(
        "INSERT INTO events (event_id, event_type, site_id, ts, visitor_id, session_id, path, "
        "country, device_type) "
        "SELECT generateUUIDv4(), 'pageview', 'a', {start:DateTime64(3, 'UTC')} + number, "
        "concat('v', toString(number % 5000)), concat('o', toString(number % 20000)), "
        "concat('/other/', toString(number % 300)), "
        "['US', 'AZ', 'TR', 'GE', 'DE', 'RU'][number % 20000 % 6 + 1], "
        "['mobile', 'desktop', 'tablet'][number % 20000 % 7 % 3 + 1] FROM numbers(345600)",
        parameters={"start": START},
    )


def _read_table(wh, sql: str, params: dict) -> str:
    """The table or projection the plan of ``sql`` reads (the last one named)."""
    plan = wh.query(f"EXPLAIN projections = 1 {sql}", parameters=params).result_rows
    return [row[0] for row in plan if "ReadFromMergeTree" in row[0]][-1]


def test_a_country_device_view_reads_the_projections_and_answers_the_same(wh) -> None:
    _fill(wh, seed=31)
    for filters in VIEWS:
        query = _view(filters)
        assert _answers(wh, query) == _answers(WithSettings(wh, SKIP), query)
    query = _view(VIEWS[0])
    assert _answers(wh, query)[0], "the view has rows: something was compared"
    # the raw events read and the sessions read of the view go through p_visit
    crossed = build(Query(**{**query.__dict__, "dimensions": ("path",)}))
    assert crossed.source == "events"
    assert "p_visit" in _read_table(wh, crossed.text, crossed.parameters)
    params = {**reports._session_days(query), "limit": 10}
    # the exact (unsampled) entry/exit read of product.entry_exit with these filters
    pages = visit_sample.pages_sql(None, product._session_filters(query, params))
    assert "p_visit" in _read_table(wh, pages, params)
    per_visit, params = product._visits_sql(query)
    WithSettings(wh, USE).query(f"SELECT count() FROM ({per_visit})", parameters=params)


def test_merged_sessions_keep_answering_through_the_projection(wh) -> None:
    _fill(wh, seed=37)
    before = {f: _answers(wh, _view(f))[2:4] for f in VIEWS[:2]}
    wh.command("OPTIMIZE TABLE sessions FINAL")
    for filters, answer in before.items():
        assert _answers(wh, _view(filters))[2:4] == answer
        assert _answers(WithSettings(wh, SKIP), _view(filters))[2:4] == answer
    ((parts,),) = wh.query(
        "SELECT count() FROM system.projection_parts "
        "WHERE database = currentDatabase() AND table = 'sessions' AND name = 'p_visit' "
        "AND active"
    ).result_rows
    assert parts > 0  # the merged parts were given the projection again


def test_erasure_delete_works_with_the_projections(wh) -> None:
    _insert(wh, seeded_visits(seed=41))
    ((session,),) = wh.query(
        "SELECT any(session_id) FROM events WHERE site_id = 'a' AND country = 'AZ' "
        "AND session_id != ''"
    ).result_rows
    counts = {
        table: f"SELECT count() FROM {table} WHERE site_id = 'a' AND country = 'AZ' "
        "AND session_id = {s:String}"
        for table in ("events", "sessions")
    }
    for sql in counts.values():
        assert wh.query(sql, parameters={"s": session}, settings=USE).result_rows[0][0] > 0
    for table in counts:
        wh.command(
            f"DELETE FROM {table} WHERE session_id = {{s:String}}", parameters={"s": session}
        )
    for sql in counts.values():
        for settings in (USE, SKIP):
            assert wh.query(sql, parameters={"s": session}, settings=settings).result_rows == [(0,)]
