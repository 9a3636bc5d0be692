"""Migration 0020: a sampled read of ``sessions`` (a busy range's per-visit figures) reads the
projection ``p_sample``, ordered by the session hash, and answers what the table's own order
answers.

On the visits of test_wh_events_by_visit (a busy spread over the same days, so the sample is
a small run of the hash order), with the sample threshold lowered: the plan of the sampled
entry/exit and visit-figure reads names ``p_sample``; summary, entry/exit, goals and funnel
answer the same with projections off; a read of every visit and a country/device view do not
take it.
"""

from __future__ import annotations

import pytest

from tests.warehouse.samples import WithSettings
from tests.warehouse.test_wh_events_by_visit import SKIP, VIEWS, _answers, _fill, _read_table, _view
from warehouse import product, reports, visit_sample

pytestmark = pytest.mark.clickhouse

LOW = 2_000


def test_a_sampled_read_takes_the_hash_ordered_projection(wh, monkeypatch) -> None:
    _fill(wh, seed=43)
    query = _view(())
    params = {**reports._session_days(query), "limit": 10}
    monkeypatch.setattr(visit_sample, "SAMPLE_VISITS", LOW)
    share = visit_sample.sampled_visits(wh, params)
    assert share < 1
    sampled = {**params, "cut": visit_sample.cut(share)}
    for sql in (
        visit_sample.pages_sql(visit_sample.SAMPLED),
        visit_sample.visits_sql(visit_sample.SAMPLED),
    ):
        assert "p_sample" in _read_table(wh, sql, sampled)
    # every visit, or a view by country and device: not by the hash
    assert "p_sample" not in _read_table(wh, visit_sample.pages_sql(), params)
    where = product._session_filters(_view(VIEWS[0]), params)
    assert "p_visit" in _read_table(wh, visit_sample.pages_sql(None, where), params)

    got = _answers(wh, query)
    assert got[2]["sampled"] == got[3]["sampled"] == got[4]["sampled"] == share
    assert got == _answers(WithSettings(wh, SKIP), query)
    assert got[3]["entry_pages"], "the sample has visits: something was compared"
