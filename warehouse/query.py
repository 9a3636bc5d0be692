"""The read path: the ONE place that turns a dashboard/API question into SQL.

A ``Query`` (``warehouse.question``) names a site, a date range, metrics, dimensions and
equality filters, all by whitelisted names; the SQL is assembled only from the expressions in
the tables there and every user-supplied value travels as a bound parameter. The builder reads
the rollups (``agg_site_hourly``, ``agg_dim_hourly`` with its daily companion
``agg_dim_daily``) whenever they can answer, and raw ``events`` only for cross-dimension
questions. Nothing here returns a row per visitor: every query groups.

Two read-path optimisations for the one-dimension rollup (``source`` still names the rollup
family, ``agg_dim_hourly``):
- a range without a time bucket reads its whole Monday-Sunday UTC weeks from
  ``agg_dim_weekly``, its other whole UTC days from ``agg_dim_daily`` and only the partial
  days at both ends (which depend on the report time zone) from ``agg_dim_hourly``
  (``warehouse.rollup_ranges``);
- a top-N ordered by an additive metric first ranks the values by that sum (cheap columns),
  then merges the visitor/session sketches of the N winners only. The ranking uses the same
  ORDER BY and LIMIT as the answer, so the answer is exactly the one a single pass would give.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client

from warehouse import details
from warehouse.metrics import WEB
from warehouse.question import (
    DIMENSIONS,
    METRICS,
    TIME_BUCKETS,
    Query,
    QueryError,
    Result,
    utc_bounds,
)
from warehouse.rollup_ranges import split_days


@dataclass(frozen=True)
class Sql:
    text: str
    parameters: dict
    columns: list[str]
    source: str


def filter_sql(query: Query, params: dict) -> list[str]:
    """WHERE conditions over raw events for the query's filters (no ``section``: that needs
    one row per section read, which a per-visit figure cannot use)."""
    keep = []
    for i, (name, value) in enumerate(query.filters):
        if details.joins_sections([name]):
            raise QueryError("visit figures cannot be filtered by section; drop that filter")
        params[f"f{i}"] = value
        expr = (
            details.detail(name, params, f"f{i}").expression
            if details.is_dimension(name)
            else DIMENSIONS[name]
        )
        keep.append(f"{expr} = {{f{i}:String}}")
    return keep


def choose_source(query: Query) -> str:
    """The cheapest table that answers exactly: a rollup unless filters cross dimensions."""
    plain = set(query.plain_dimensions)
    filtered = {f for f, _ in query.filters}
    if query.reads_details:
        answers = details.section_rollup_answers(
            plain | filtered, [METRICS[m] for m in query.metrics]
        )
        return details.SECTION_ROLLUP if answers else "events"
    if any(METRICS[m].rollup is None for m in query.metrics):
        return "events"
    if "path" in filtered and len(plain) < len(query.dimensions):
        # a page's series: the projection p_path (0015) reads that page's events only, while
        # agg_dim_hourly (ordered by hour, then value) reads every page's hours of the range
        return "events"
    if not plain and not filtered:
        return "agg_site_hourly"
    if len(plain | filtered) == 1:
        return "agg_dim_hourly"
    return "events"


def build(query: Query, source: str | None = None) -> Sql:
    """Assemble the SQL for ``query`` from whitelisted expressions and bound parameters.

    ``source`` forces raw ``events`` (consistency checks); by default the cheapest table.
    """
    if source not in (None, "events"):
        raise QueryError("only raw events may be forced as a source")
    source = source or choose_source(query)
    rollup = source != "events"
    sections_rolled = source == details.SECTION_ROLLUP
    time_column = "ts" if source == "events" else "hour"
    start, end = utc_bounds(query)
    params: dict = {"site": query.site, "start": start, "end": end, "tz": query.tz}
    keep = ["site_id = {site:String}"]
    select, group = [], []
    joined = not rollup and details.joins_sections(
        [*query.dimensions, *(f for f, _ in query.filters)]
    )
    if joined:  # sections are read on web pages (as in agg_section_hourly)
        keep.append(WEB)
    for i, name in enumerate(query.dimensions):
        if name in TIME_BUCKETS:
            expr = TIME_BUCKETS[name].format(t=time_column)
        elif sections_rolled:
            expr = "section"
        elif details.is_dimension(name):
            found = details.detail(name, params, f"d{i}")
            expr = found.expression
            keep += [found.present] if found.present else []
        else:
            expr = "value" if rollup else DIMENSIONS[name]
        alias = name if name.isidentifier() else f"d{i}"  # prop:<key>: the key stays bound
        select.append(f"{expr} AS {alias}")
        group.append(alias)
    if source == "agg_dim_hourly":
        (dimension,) = set(query.plain_dimensions) | {f for f, _ in query.filters}
        params["dimension"] = dimension
        keep.append("dimension = {dimension:String}")
    for i, (name, value) in enumerate(query.filters):
        params[f"f{i}"] = value
        if sections_rolled:
            expr = "section"
        elif details.is_dimension(name):
            expr = details.detail(name, params, f"f{i}").expression
        else:
            expr = "value" if rollup else DIMENSIONS[name]
        keep.append(f"{expr} = {{f{i}:String}}")
    for name in query.metrics:
        # aliased apart from the rollup columns: `sum(pageviews) AS pageviews` would make a
        # ratio's own `sum(pageviews)` an aggregate inside an aggregate
        expr = (
            details.metric(name, joined)
            if name in details.METRICS and not rollup
            else METRICS[name].expression(rollup)
        )
        select.append(f"{expr} AS m_{name}")
    time_dims = [d for d in query.dimensions if d in TIME_BUCKETS]
    order = time_dims + [f"m_{query.metrics[0]} DESC"] + [d for d in group if d not in time_dims]
    if source == "agg_dim_hourly" and not time_dims:
        table, where = _dimension_rows(query, keep, params, start, end), []
    else:
        table = source + (details.SECTIONS_JOIN if joined else "")
        where = keep + [
            f"{time_column} >= {{start:DateTime('UTC')}}",
            f"{time_column} < {{end:DateTime('UTC')}}",
        ]
    text = (
        f"SELECT {', '.join(select)} FROM {table}"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + (f" GROUP BY {', '.join(group)}" if group else "")
        + f" ORDER BY {', '.join(order)} LIMIT {int(query.limit)}"
    )
    return Sql(text, params, list(query.dimensions) + list(query.metrics), source)


def _dimension_rows(
    query: Query, keep: list[str], params: dict, start: datetime, end: datetime
) -> str:
    """The one-dimension rollup rows of [start, end) as a subquery: whole UTC weeks from
    agg_dim_weekly, the other whole UTC days from agg_dim_daily, partial days from
    agg_dim_hourly; for an additive top-N only the N winners."""
    columns = ", ".join(["value"] + sorted({c for m in query.metrics for c in METRICS[m].columns}))
    rows = _dimension_union(columns, keep, params, start, end)
    first = query.metrics[0]
    if not METRICS[first].additive or query.filters or not query.plain_dimensions:
        return rows
    ranked = _dimension_union(
        f"value, {', '.join(METRICS[first].columns)}", keep, params, start, end
    )
    winners = (
        f"value IN (SELECT value FROM {ranked} GROUP BY value "
        f"ORDER BY {METRICS[first].rollup} DESC, value LIMIT {int(query.limit)})"
    )
    return _dimension_union(columns, keep + [winners], params, start, end)


def _dimension_union(
    columns: str, keep: list[str], params: dict, start: datetime, end: datetime
) -> str:
    hourly_range = "hour >= {start:DateTime('UTC')} AND hour < {end:DateTime('UTC')}"
    first_day = start.date() + timedelta(days=start.time() != time())  # whole days: ceil..floor
    last_day = end.date()
    where = " AND ".join(keep)
    if first_day >= last_day:
        return f"(SELECT {columns} FROM agg_dim_hourly WHERE {where} AND {hourly_range})"
    split = split_days(first_day, last_day)
    params.update(day_from=first_day, day_to=last_day)
    parts = []
    if split.has_weeks:
        params.update(week_from=split.week_from, week_to=split.week_to)
        parts.append(
            f"SELECT {columns} FROM agg_dim_weekly WHERE {where} "
            "AND week >= {week_from:Date} AND week < {week_to:Date}"
        )
        days = (
            "((day >= {day_from:Date} AND day < {week_from:Date}) "
            "OR (day >= {week_to:Date} AND day < {day_to:Date}))"
        )
    else:
        days = "day >= {day_from:Date} AND day < {day_to:Date}"
    if split.days():
        parts.append(f"SELECT {columns} FROM agg_dim_daily WHERE {where} AND {days}")
    edges = (
        "((hour >= {start:DateTime('UTC')} AND hour < toDateTime({day_from:Date}, 'UTC')) "
        "OR (hour >= toDateTime({day_to:Date}, 'UTC') AND hour < {end:DateTime('UTC')}))"
    )
    parts.append(f"SELECT {columns} FROM agg_dim_hourly WHERE {where} AND {edges}")
    return f"({' UNION ALL '.join(parts)})"


def run(client: Client, query: Query, source: str | None = None) -> Result:
    zone = ZoneInfo(query.tz)
    rolled = None if source else _rolled_part(query)
    if rolled is not None:
        return _run_split(client, query, rolled, zone)
    sql = build(query, source)
    rows = client.query(sql.text, parameters=sql.parameters).result_rows
    return Result(sql.columns, [[_plain(v, zone) for v in row] for row in rows], sql.source)


def _rolled_part(query: Query) -> Query | None:
    """The part of a question asking for ``scroll_depth`` beside other metrics (the pages
    panel) that ranks its rows (so the first metric is not scroll depth): that part, from a
    rollup when one answers it, picks the rows, and scroll depth is read for them only (the
    costly per-(visit, page) maximum then covers N pages, not every page)."""
    raw = [m for m in query.metrics if METRICS[m].rollup is None]
    if raw != ["scroll_depth"] or query.metrics[0] in raw or query.reads_details:
        return None
    return replace(query, metrics=tuple(m for m in query.metrics if m not in raw))


def _run_split(client: Client, query: Query, rolled: Query, zone: ZoneInfo) -> Result:
    """``rolled`` from its cheapest source (rows, order and limit: the rollup metrics equal
    the raw ones), then scroll depth from raw events for those rows' values only, by row."""
    first = build(rolled)
    rows = client.query(first.text, parameters=first.parameters).result_rows
    rows = [[_plain(v, zone) for v in row] for row in rows]
    columns = [*query.dimensions, *query.metrics]
    if not rows:
        return Result(columns, [], f"{first.source}+events")
    width = len(query.dimensions)
    scroll = _deepest_scroll(query, sorted({r[i] for r in rows for i in _plain_slots(query)}))
    found = client.query(scroll.text, parameters=scroll.parameters).result_rows
    depth = {tuple(_plain(v, zone) for v in r[:width]): r[width] for r in found}
    out = []
    for row in rows:
        by_name = dict(zip(first.columns, row))
        by_name["scroll_depth"] = depth.get(tuple(row[:width]))
        out.append([by_name[c] for c in columns])
    return Result(columns, out, f"{first.source}+events")


# the same (visit, page) key as the one-pass metric (metrics._SCROLL)
PAGE_VISIT = "concat(session_id, ' ', path) AS page_visit"


def _plain_slots(query: Query) -> list[int]:
    return [i for i, d in enumerate(query.dimensions) if d not in TIME_BUCKETS]


def _deepest_scroll(query: Query, values: list[str]) -> Sql:
    """Scroll depth (metrics.py: the average over (visit, page) of the deepest engagement
    point) per row of ``query``'s dimensions, over raw events whose plain dimension takes one
    of ``values``: the deepest point per (row, visit, page) first, then their average per row.
    Rows with no engagement are absent (their depth is NULL, as in the one-pass metric)."""
    start, end = utc_bounds(query)
    params: dict = {"site": query.site, "start": start, "end": end, "tz": query.tz}
    keep = [
        "site_id = {site:String}",
        "ts >= {start:DateTime('UTC')}",
        "ts < {end:DateTime('UTC')}",
        "event_type = 'engagement'",
        *filter_sql(query, params),
    ]
    select = []
    for name in query.dimensions:
        expr = TIME_BUCKETS[name].format(t="ts") if name in TIME_BUCKETS else DIMENSIONS[name]
        select.append(f"{expr} AS {name}")
        if name not in TIME_BUCKETS:
            params["values"] = values
            keep.append(f"{expr} IN {{values:Array(String)}}")
    names = list(query.dimensions)
    inner = (
        f"SELECT {', '.join([*select, PAGE_VISIT])}, "
        f"max(toUInt16(scroll_pct)) AS deepest FROM events WHERE {' AND '.join(keep)} "
        f"GROUP BY {', '.join([*names, 'page_visit'])}"
    )
    text = (
        f"SELECT {', '.join([*names, 'if(count() = 0, NULL, round(avg(deepest), 1))'])} "
        f"FROM ({inner})" + (f" GROUP BY {', '.join(names)}" if names else "")
    )
    return Sql(text, params, [*names, "scroll_depth"], "events")


def _plain(value: object, zone: ZoneInfo) -> object:
    """JSON-ready value; a time (the ``hour`` bucket) reads in the report time zone, with its
    offset, e.g. ``2026-03-01T14:00:00+04:00`` (the driver may hand it back in UTC)."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(zone).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value
