"""The product dashboard's reads beyond one breakdown: filtered top line, comparison with the
previous period, filtered entry/exit pages, realtime, and funnels.

Responsible for answering the product page exactly as the page shows it, so nothing is
computed in the browser: the previous period and the change against it, the visit-level
figures of a filtered view, the last minutes' readers, the steps of a funnel. Filters use the
whitelisted expressions of ``warehouse.query`` (values are bound parameters); funnels use the
step grammar of ``warehouse.goals`` (``page:/pattern*`` or ``event:name``).

A filtered view's visits are the visits *as seen through the filter*: its events only. So a
filtered bounce is a visit with exactly one matching pageview and no matching custom event or
outbound click, and its duration is the engaged time of its matching events.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

from clickhouse_connect.driver.client import Client

from warehouse import reports, visit_sample
from warehouse.goals import _KINDS, Goal
from warehouse.metrics import INTERACTION, WEB
from warehouse.query import filter_sql, run
from warehouse.question import Query, QueryError, utc_bounds

# filters the session aggregates answer (constant within a visit, kept per session there):
# bounce rate, visit duration and entry/exit pages read the `sessions` rows of the view for them
SESSION_FILTERS = frozenset({"country", "device_type"})
MAX_STEPS = 8
REALTIME_MINUTES = 5
# change is relative ((now - before) / before) except for rates, whose change is in points
POINT_CHANGES = frozenset({"bounce_rate"})
# what a period's answer says about itself, not a figure that changes
_NOT_CHANGING = ("site", "from", "to", "sampled")
_RANGE = (
    "site_id = {site:String} AND ts >= {start:DateTime64(3, 'UTC')} "
    "AND ts < {end:DateTime64(3, 'UTC')}"
)
# the sampling rule on the hash events keep (0019); empty session ids (no visit) left out
_SAMPLED_HASH = visit_sample.sampled_by("session_hash") + " AND session_hash != cityHash64('')"


def previous_range(date_from: date, date_to: date) -> tuple[date, date]:
    """The period of the same length just before ``date_from..date_to`` (inclusive dates)."""
    days = (date_to - date_from).days + 1
    return date_from - timedelta(days=days), date_from - timedelta(days=1)


def previous(query: Query) -> Query:
    return replace(
        query,
        date_from=previous_range(query.date_from, query.date_to)[0],
        date_to=previous_range(query.date_from, query.date_to)[1],
    )


def change(now: object, before: object, name: str) -> float | None:
    """The change of one figure against the previous period; None when it has no meaning."""
    if not isinstance(now, int | float) or not isinstance(before, int | float):
        return None
    if name in POINT_CHANGES:
        return round(now - before, 4)
    return round((now - before) / before, 4) if before else None


_PER_VISIT = """
SELECT session_id, countIf(event_type = 'pageview') AS pageviews,
       countIf({interaction}) AS interactions,
       sumIf(engaged_ms, event_type = 'engagement') AS engaged_ms,
       argMinIf(path, ts, event_type = 'pageview') AS entry,
       argMaxIf(path, ts, event_type = 'pageview') AS exit
FROM events WHERE {where} GROUP BY session_id
"""


def _visits_sql(query: Query) -> tuple[str, dict]:
    start, end = utc_bounds(query)
    params: dict = {"site": query.site, "start": start, "end": end}
    where = " AND ".join([_RANGE, WEB, "session_id != ''", *filter_sql(query, params)])
    return _PER_VISIT.format(interaction=INTERACTION, where=where), params


def _session_filters(query: Query, params: dict) -> str | None:
    """The conditions on a sessions row for the query's site and filters (``per_session``'s
    ``where``), or None when the sessions table cannot answer them."""
    if any(name not in SESSION_FILTERS for name, _ in query.filters):
        return None
    keep = [visit_sample.SITE]
    for i, (name, value) in enumerate(query.filters):
        params[f"sf{i}"] = value
        keep.append(f"{name} = {{sf{i}:String}}")
    return " AND ".join(keep)


def summary(client: Client, query: Query) -> dict:
    """The top line of ``reports.summary``, for the query's site, range and filters (a
    filtered view's bounce rate and visit duration are exact: it reads its own visits only)."""
    if not query.filters:
        return reports.summary(client, query.site, query.date_from, query.date_to, query.tz).data
    totals = run(client, replace(query, metrics=reports.SUMMARY_METRICS, dimensions=()))
    data = totals.records()[0] if totals.rows else dict.fromkeys(reports.SUMMARY_METRICS, 0)
    data.update(
        {
            "site": query.site,
            "from": str(query.date_from),
            "to": str(query.date_to),
            **_filtered_visit_figures(client, query),
        }
    )
    return data


def _filtered_visit_figures(client: Client, query: Query) -> dict:
    """Bounce rate and visit duration of the visits as seen through the query's filters."""
    params = reports._session_days(query)
    where = _session_filters(query, params)
    if where:
        return reports.visit_figures(client, params, 1.0, where)
    per_visit, params = _visits_sql(query)
    sql = (
        f"SELECT count(), countIf(pageviews = 1 AND interactions = 0), "
        f"avg(engaged_ms / 1000) FROM ({per_visit})"
    )
    count, bounces, avg = client.query(sql, parameters=params).result_rows[0]
    return {
        "bounce_rate": round(bounces / count, 4) if count else None,
        "visit_duration": round(avg, 1) if count else None,
        "sampled": None,
    }


def compared_summary(client: Client, query: Query) -> dict:
    """The summary, the previous period's (``previous``) and the change of each figure."""
    now, before = summary(client, query), summary(client, previous(query))
    return {
        **now,
        "previous": before,
        "change": {
            k: change(v, before.get(k), k) for k, v in now.items() if k not in _NOT_CHANGING
        },
    }


def entry_exit(client: Client, query: Query) -> dict:
    """Top entry and exit pages (visits, and the bounce rate of visits entering there)."""
    if not query.filters:
        return reports.entry_exit(
            client, query.site, query.date_from, query.date_to, query.tz, query.limit
        ).data
    data: dict = {"site": query.site, "from": str(query.date_from), "to": str(query.date_to)}
    params = {**reports._session_days(query), "limit": query.limit}
    where = _session_filters(query, params)
    if where:
        return {
            **data,
            **reports.pages(client, visit_sample.pages_sql(None, where), params),
        }
    per_visit, params = _visits_sql(query)
    sql = (
        f"SELECT kind, page, count() AS visits, "
        f"countIf(pageviews = 1 AND interactions = 0) AS bounces FROM ({per_visit}) "
        f"ARRAY JOIN {list(reports.PAGE_KINDS)} AS kind, [entry, exit] AS page "
        f"WHERE page != '' GROUP BY kind, page ORDER BY kind, visits DESC, page "
        f"LIMIT {int(query.limit)} BY kind"
    )
    return {**data, **reports.pages(client, sql, params)}


def realtime(client: Client, site: str, now: datetime, limit: int = 10) -> dict:
    """Visitors with a web event in the last ``REALTIME_MINUTES`` minutes and the pages they
    are reading (visitors per page of their web events in that window). ``now``: UTC."""
    params = {
        "site": site,
        "start": (now - timedelta(minutes=REALTIME_MINUTES)).replace(tzinfo=None),
        "end": now.replace(tzinfo=None) + timedelta(seconds=1),
    }
    where = f"{_RANGE} AND {WEB}"
    ((visitors,),) = client.query(
        f"SELECT uniqExact(visitor_id) FROM events WHERE {where}", parameters=params
    ).result_rows
    pages = client.query(
        f"SELECT path, uniqExact(visitor_id) AS v FROM events WHERE {where} "
        f"GROUP BY path ORDER BY v DESC, path LIMIT {int(limit)}",
        parameters=params,
    ).result_rows
    return {
        "site": site,
        "minutes": REALTIME_MINUTES,
        "at": now.isoformat(),
        "visitors": visitors,
        "pages": [{"path": p, "visitors": v} for p, v in pages],
    }


def parse_steps(texts: list[str]) -> list[Goal]:
    if not 2 <= len(texts) <= MAX_STEPS:
        raise QueryError(f"a funnel has 2 to {MAX_STEPS} steps: step=page:/a&step=event:signup")
    return [Goal.parse(t) for t in texts]


def funnel(client: Client, query: Query, steps: list[Goal]) -> dict:
    """Per step, the web visits that reached it after every earlier step, in order, within the
    visit (ClickHouse ``windowFunnel``), and the conversion from the first step and from the
    step before. ``visits``: every web visit of the range. With filters, the visits as seen
    through them (their matching events only). Exact, except on a busy range without filters:
    then estimated from a sample of whole visits (``sampled`` names its share, see
    ``_sampled_levels``)."""
    start, end = utc_bounds(query)
    params: dict = {"site": query.site, "start": start, "end": end}
    conditions = []
    for i, step in enumerate(steps):
        params[f"g{i}"] = step.value()
        conditions.append(_KINDS[step.kind].format(i=i))
    days = reports._session_days(query)
    share = 1.0 if query.filters else visit_sample.sampled_visits(client, days)
    if share < 1:
        levels = _sampled_levels(client, params, steps, conditions, share)
        visits = reports.visits_of_sample(client, days, share)
    else:
        levels = _levels(client, query, params, conditions)
        visits = sum(levels.values())
    rows, first, before = [], None, None
    for i, step in enumerate(steps, start=1):
        reached = sum(n for level, n in levels.items() if level >= i)
        first = reached if first is None else first
        rows.append(
            {
                "step": i,
                "goal": str(step),
                "visits": reached,
                "of_visits": round(reached / visits, 4) if visits else None,
                "from_first": round(reached / first, 4) if first else None,
                "from_previous": round(reached / before, 4) if before else None,
            }
        )
        before = reached
    return {
        "site": query.site,
        "from": str(query.date_from),
        "to": str(query.date_to),
        "visits": visits,
        "sampled": share if share < 1 else None,
        "steps": rows,
    }


def _levels(client: Client, query: Query, params: dict, conditions: list[str]) -> dict:
    """Visits per funnel level (0: no step), every web visit of the range through the filters."""
    # a visit lasts at most a day here: sessions end after 30 idle minutes
    where = " AND ".join([_RANGE, WEB, "session_id != ''", *filter_sql(query, params)])
    per_visit = (
        f"SELECT session_id, windowFunnel(86400)(toDateTime(ts), "
        f"{', '.join(conditions)}) AS level FROM events WHERE {where} "
        f"GROUP BY session_id"
    )
    return {
        row[0]: row[1]
        for row in client.query(
            f"SELECT level, count() FROM ({per_visit}) GROUP BY level", parameters=params
        ).result_rows
    }


def _sampled_levels(
    client: Client, params: dict, steps: list[Goal], conditions: list[str], share: float
) -> dict:
    """Visits per funnel level >= 1, estimated from the sampled visits (session hash below the
    cut of ``share``, as in ``visit_sample.sampled_visits``), scaled up. Only the step events are
    read (windowFunnel skips the events that match no step, so a visit's level is the same):
    the page steps' pageviews and the event steps' custom events apart, so that the pages are
    read through the projection by path (migration 0015) when their patterns have a prefix.
    The rule reads the hash kept on insert (``session_hash``, migration 0019), and a visit is
    told apart by it: session_id, a string, is not read (a sampled visit of the range sharing
    its 64-bit hash with another would count once: odds ~ visits^2 / 2^65, < 1e-8 at 200,000)."""
    parts = []
    for kind in ("page", "event"):
        chosen = [f"({c})" for step, c in zip(steps, conditions) if step.kind == kind]
        if chosen:
            # each step's condition evaluated here, where its columns are read (0: other kind)
            flags = [
                f"({c}) AS s{i}" if step.kind == kind else f"0 AS s{i}"
                for i, (step, c) in enumerate(zip(steps, conditions))
            ]
            parts.append(
                f"SELECT session_hash, toDateTime(ts) AS t, {', '.join(flags)} FROM events "
                f"WHERE {_RANGE} AND {_SAMPLED_HASH} AND ({' OR '.join(chosen)})"
            )
    sql = (
        f"SELECT level, count() FROM (SELECT windowFunnel(86400)(t, "
        f"{', '.join(f's{i}' for i in range(len(steps)))}) AS level "
        f"FROM ({' UNION ALL '.join(parts)}) GROUP BY session_hash) GROUP BY level"
    )
    rows = client.query(sql, parameters={**params, "cut": visit_sample.cut(share)}).result_rows
    return {level: round(n / share) for level, n in rows}
