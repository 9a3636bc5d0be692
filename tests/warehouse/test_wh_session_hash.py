"""Migration 0019: events keep their session hash (``session_hash``), the sampled funnel reads it.

The hash is ``cityHash64(session_id)`` in every row: rows written before the migration (at each
step of it: column added, column materialized, projection p_path dropped and defined again),
rows written after it, read in the table's order or through p_path. The funnel's answer is the
one of the rule on session_id it replaces (``_session_id_levels``: the code before 0019), on
the sample (shares 0.1 to 0.5, several step orders) and on every visit.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.warehouse.samples import START
from tests.warehouse.test_wh_entry_exit import _insert, seeded_visits
from warehouse import product, visit_sample
from warehouse.ddl import Layout
from warehouse.goals import _KINDS, Goal
from warehouse.migrate import discover, migrate
from warehouse.question import Query

pytestmark = pytest.mark.clickhouse

FIRST = START.date()
QUERY = Query(
    site="a", metrics=("visits",), date_from=FIRST, date_to=FIRST + timedelta(days=4), limit=1000
)
STEPS = [Goal.parse(s) for s in ("page:/services/*", "page:/lawyers", "event:signup")]
ORDERS = (STEPS, STEPS[::-1], [Goal.parse("event:signup"), Goal.parse("page:/")])
WRONG = (
    "SELECT count() FROM events WHERE site_id = 'a' AND path LIKE '/%' "
    "AND session_hash != cityHash64(session_id)"
)


def _session_id_levels(client, params, steps, conditions, share) -> dict:
    """``product._sampled_levels`` before migration 0019: the rule on session_id, per visit."""
    parts = []
    for kind in ("page", "event"):
        chosen = [f"({c})" for step, c in zip(steps, conditions) if step.kind == kind]
        if chosen:
            parts.append(
                f"SELECT session_id, ts, event_type, path, event_name FROM events "
                f"WHERE {product._RANGE} AND {visit_sample.SAMPLED} AND session_id != '' "
                f"AND ({' OR '.join(chosen)})"
            )
    sql = (
        f"SELECT level, count() FROM (SELECT session_id, windowFunnel(86400)(toDateTime(ts), "
        f"{', '.join(conditions)}) AS level FROM ({' UNION ALL '.join(parts)}) "
        f"GROUP BY session_id) GROUP BY level"
    )
    rows = client.query(sql, parameters={**params, "cut": visit_sample.cut(share)}).result_rows
    return {level: round(n / share) for level, n in rows}


def _levels(client, steps: list[Goal], share: float, read=product._sampled_levels) -> dict:
    start, end = product.utc_bounds(QUERY)
    params: dict = {"site": QUERY.site, "start": start, "end": end}
    for i, step in enumerate(steps):
        params[f"g{i}"] = step.value()
    conditions = [_KINDS[s.kind].format(i=i) for i, s in enumerate(steps)]
    return read(client, params, steps, conditions, share)


def _references(client) -> dict:
    return {
        (i, share): _levels(client, steps, share, _session_id_levels)
        for i, steps in enumerate(ORDERS)
        for share in (0.1, 0.2, 0.5, 1.0)
    }


def test_the_sampled_funnel_answers_what_the_session_id_rule_answered(wh, monkeypatch) -> None:
    _insert(wh, seeded_visits(seed=5, visits=3000))
    references = _references(wh)
    assert references == {key: _levels(wh, ORDERS[key[0]], key[1]) for key in references}
    assert sum(references[0, 0.1].values()) > 30  # the sample reaches the steps
    # the whole answer, as the API gives it, sampled and exact
    for lowered in (400, visit_sample.SAMPLE_VISITS):
        monkeypatch.setattr(visit_sample, "SAMPLE_VISITS", lowered)
        for steps in ORDERS:
            new = product.funnel(wh, QUERY, steps)
            with monkeypatch.context() as old_code:
                old_code.setattr(product, "_sampled_levels", _session_id_levels)
                assert new == product.funnel(wh, QUERY, steps)
            assert (new["sampled"] in (0.1, 0.2)) == (lowered == 400)


def test_rows_written_before_the_migration_have_their_hash(ch) -> None:
    migrate(ch, upto=17)
    _insert(ch, seeded_visits(seed=31, visits=1200))
    references = _references(ch)
    (step,) = [m for m in discover() if m.version == 19]
    statements = step.statements(Layout.of(ch, ""))
    # after each statement (column added; materialized; p_path dropped; defined; materialized)
    for done in range(2, len(statements) + 1):
        for statement in statements[:done][-1 if done > 2 else 0 :]:
            ch.command(statement)
        assert ch.query(WRONG).result_rows == [(0,)]
        assert references == {k: _levels(ch, ORDERS[k[0]], k[1]) for k in references}
    migrate(ch)  # records 0019 (its statements are idempotent) and any later migration
    _insert(ch, seeded_visits(seed=37, visits=300))
    for settings in ({"force_optimize_projection": 1}, {"optimize_use_projections": 0}):
        assert ch.query(WRONG, settings=settings).result_rows == [(0,)]
    ((rows,),) = ch.query("SELECT count() FROM events WHERE session_hash != 0").result_rows
    assert rows > 1000
    with pytest.raises(Exception, match="session_hash, because it is MATERIALIZED"):
        ch.command("INSERT INTO events (session_id, site_id, session_hash) VALUES ('x', 'a', 1)")


def test_the_sampled_read_reads_no_session_id(wh) -> None:
    """The point of 0019: the sampled funnel's SQL names the kept hash, not session_id (were
    ``visit_sample.SAMPLED`` to change its wording, the funnel would hash strings again)."""
    seen: list[str] = []

    class Recording:
        def query(self, sql: str, **kw):
            seen.append(sql)
            return wh.query(sql, **kw)

    _levels(Recording(), STEPS, 0.1)
    assert "session_hash <" in seen[0] and "session_id" not in seen[0]
