"""Migration 0015: a page's view reads the events by path (projection ``p_path``).

A path-filtered read uses the projection (ClickHouse refuses the query under
``force_optimize_projection`` otherwise), answers what the table's own order answers, and
erasure's DELETE still works on the table and in the projection.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pytest

from tests.warehouse.samples import START, WithSettings
from tests.warehouse.test_wh_entry_exit import _insert, seeded_visits
from warehouse import goals, product
from warehouse.query import run
from warehouse.question import Query

pytestmark = pytest.mark.clickhouse

USE = {"force_optimize_projection": 1}
SKIP = {"optimize_use_projections": 0}


def _page_view(path: str, limit: int = 1000) -> Query:
    first = START.date()
    return Query(
        site="a",
        metrics=("visitors", "pageviews"),
        date_from=first,
        date_to=first + timedelta(days=4),
        filters=(("path", path),),
        limit=limit,
    )


def _answers(client, query: Query) -> list:
    return [
        run(client, Query(**{**query.__dict__, "dimensions": ("country",)}), "events").rows,
        product.summary(client, query),
        product.entry_exit(client, query),
        goals.conversions(client, "a", query.date_from, query.date_to, [], filters=query.filters),
    ]


def test_a_page_view_reads_the_projection_and_answers_the_same(wh) -> None:
    _insert(wh, seeded_visits(seed=23))
    # enough other pages' events over the same days that reading by path reads fewer granules
    wh.command(
        "INSERT INTO events (event_id, event_type, site_id, ts, visitor_id, session_id, path) "
        "SELECT generateUUIDv4(), 'pageview', 'a', {start:DateTime64(3, 'UTC')} + number, "
        "concat('v', toString(number % 5000)), concat('o', toString(number % 20000)), "
        "concat('/other/', toString(number % 300)) FROM numbers(345600)",
        parameters={"start": START},
    )
    for path in ("/faq", "/services/notary", "/nowhere"):
        query = _page_view(path)
        assert _answers(wh, query) == _answers(WithSettings(wh, SKIP), query)
        if path == "/nowhere":
            continue  # nothing to read, by either order
        # the raw reads of a page's view go through the projection
        forced = WithSettings(wh, USE)
        run(cast(Any, forced), Query(**{**query.__dict__, "dimensions": ("country",)}), "events")
        per_visit, params = product._visits_sql(query)
        forced.query(f"SELECT count() FROM ({per_visit})", parameters=params)
    assert _answers(wh, _page_view("/faq"))[0]  # the page has rows: something was compared


def test_erasure_delete_works_with_the_projection(wh) -> None:
    _insert(wh, seeded_visits(seed=29))
    count = (
        "SELECT count() FROM events "
        "WHERE site_id = 'a' AND path = '/faq' AND session_id = {s:String}"
    )
    ((session,),) = wh.query(
        "SELECT any(session_id) FROM events WHERE site_id = 'a' AND path = '/faq'"
    ).result_rows
    assert wh.query(count, parameters={"s": session}, settings=USE).result_rows[0][0] > 0
    wh.command("DELETE FROM events WHERE session_id = {s:String}", parameters={"s": session})
    for settings in (USE, SKIP):
        assert wh.query(count, parameters={"s": session}, settings=settings).result_rows[0][0] == 0
