"""The read path: the ONE place that turns a dashboard/API question into SQL.

A ``Query`` names a site, a date range, metrics, dimensions and equality filters, all by
whitelisted names; the SQL is assembled only from the expressions in the tables below and
every user-supplied value travels as a bound parameter. The builder reads the rollups
(``agg_site_hourly``, ``agg_dim_hourly`` with its daily companion ``agg_dim_daily``) whenever
they can answer, and raw ``events`` only for cross-dimension questions. Nothing here returns a
row per visitor: every query groups.

Two read-path optimisations for the one-dimension rollup (``source`` still names the rollup
family, ``agg_dim_hourly``):
- a range without a time bucket reads its whole UTC days from ``agg_dim_daily`` and only the
  partial days at both ends (which depend on the report time zone) from ``agg_dim_hourly``;
- a top-N ordered by an additive metric first ranks the values by that sum (cheap columns),
  then merges the visitor/session sketches of the N winners only. The ranking uses the same
  ORDER BY and LIMIT as the answer, so the answer is exactly the one a single pass would give.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client

# metric -> (expression over a rollup table, expression over raw events)
METRICS: dict[str, tuple[str, str]] = {
    "events": ("sum(events)", "count()"),
    "pageviews": ("sum(pageviews)", "countIf(event_type = 'pageview')"),
    "email_opens": ("sum(email_opens)", "countIf(event_type = 'email_open')"),
    "service_requests": ("sum(service_requests)", "countIf(event_type = 'service_request')"),
    "visitors": ("uniqCombinedMerge(12)(visitors)", "uniqCombined(12)(visitor_id)"),
    "sessions": ("uniqCombinedMerge(12)(sessions)",
                 "uniqCombinedIf(12)(session_id, session_id != '')"),
    "openers": ("uniqCombinedMerge(12)(openers)",
                "uniqCombinedIf(12)(visitor_id, event_type = 'email_open')"),
    "engaged_seconds": ("intDiv(sum(engaged_ms), 1000)", "intDiv(sum(engaged_ms), 1000)"),
}

# metric -> the rollup column it reads; sketch metrics are not additive (no top-N pre-ranking)
ROLLUP_COLUMNS: dict[str, str] = {
    "events": "events", "pageviews": "pageviews", "email_opens": "email_opens",
    "service_requests": "service_requests", "visitors": "visitors", "sessions": "sessions",
    "openers": "openers", "engaged_seconds": "engaged_ms"}
SKETCHES = frozenset({"visitors", "sessions", "openers"})

# dimension -> expression over raw events; each is also a `dimension` of agg_dim_hourly
DIMENSIONS: dict[str, str] = {
    "event_type": "toString(event_type)",
    "path": "path",
    "section": "toString(section)",
    "referrer_domain": "toString(referrer_domain)",
    "utm_source": "toString(utm_source)",
    "utm_medium": "toString(utm_medium)",
    "utm_campaign": "toString(utm_campaign)",
    "country": "toString(country)",
    "isp": "toString(isp)",
    "device_type": "toString(device_type)",
    "device_brand": "toString(device_brand)",
    "browser": "toString(browser)",
    "browser_version": "concat(toString(browser), ' ', toString(browser_major))",
    "os": "toString(os)",
    "os_version": "concat(toString(os), ' ', toString(os_major))",
    "service_type": "toString(service_type)",
    "campaign_id": "toString(campaign_id)",
}

# time bucket -> template over the table's time column, in the report time zone
TIME_BUCKETS: dict[str, str] = {
    "hour": "toStartOfHour({t}, {{tz:String}})",
    "day": "toDate({t}, {{tz:String}})",
    "hour_of_day": "toHour({t}, {{tz:String}})",
    "weekday": "toDayOfWeek({t}, 0, {{tz:String}})",
}

MAX_LIMIT = 1000
MAX_DAYS = 5 * 366
# dates a question may name: before the first event, and well inside ClickHouse's DateTime
# (which ends in 2106 and silently wraps past it)
DATE_MIN = date(2020, 1, 1)
DATE_MAX = date(2100, 12, 31)


class QueryError(ValueError):
    """A question the read path refuses (unknown name, bad range...); safe to show the caller."""


@dataclass(frozen=True)
class Query:
    """One aggregate question. ``date_to`` is inclusive; dates are in the report time zone."""

    site: str
    metrics: tuple[str, ...]
    date_from: date
    date_to: date
    dimensions: tuple[str, ...] = ()
    filters: tuple[tuple[str, str], ...] = ()
    limit: int = 100
    tz: str = "Asia/Baku"

    def __post_init__(self) -> None:
        _check_names("metric", self.metrics, METRICS)
        if not self.metrics:
            raise QueryError("ask for at least one metric")
        _check_names("dimension", self.dimensions, {**DIMENSIONS, **TIME_BUCKETS})
        _check_names("filter", [f for f, _ in self.filters], DIMENSIONS)
        if len(self.dimensions) != len(set(self.dimensions)):
            raise QueryError("a dimension may appear once")
        if sum(d in TIME_BUCKETS for d in self.dimensions) > 1 or len(self.dimensions) > 3:
            raise QueryError("at most one time bucket and two other dimensions")
        if not self.site:
            raise QueryError("a site is required")
        if self.date_from < DATE_MIN or self.date_to > DATE_MAX:
            raise QueryError(f"the date range must lie within {DATE_MIN}..{DATE_MAX}")
        if self.date_to < self.date_from or (self.date_to - self.date_from).days > MAX_DAYS:
            raise QueryError(f"the date range must be ordered and at most {MAX_DAYS} days")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}")
        try:
            ZoneInfo(self.tz)
        except Exception as exc:
            raise QueryError(f"unknown time zone {self.tz!r}") from exc

    @property
    def plain_dimensions(self) -> tuple[str, ...]:
        return tuple(d for d in self.dimensions if d in DIMENSIONS)

    def describe(self) -> dict:
        """The question as plain data (what the audit log records)."""
        return {"site": self.site, "metrics": list(self.metrics), "from": str(self.date_from),
                "to": str(self.date_to), "dimensions": list(self.dimensions),
                "filters": dict(self.filters), "limit": self.limit, "tz": self.tz}


def _check_names(kind: str, names, allowed: dict) -> None:
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise QueryError(f"unknown {kind} {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")


@dataclass
class Result:
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    source: str = ""

    @property
    def cells(self) -> int:
        return len(self.columns) * len(self.rows)

    def records(self) -> list[dict]:
        return [dict(zip(self.columns, row)) for row in self.rows]


@dataclass(frozen=True)
class Sql:
    text: str
    parameters: dict
    columns: list[str]
    source: str


def utc_bounds(query: Query) -> tuple[datetime, datetime]:
    """[start, end) in UTC for the query's local dates."""
    zone = ZoneInfo(query.tz)
    start = datetime.combine(query.date_from, time(), zone).astimezone(timezone.utc)
    end = datetime.combine(query.date_to + timedelta(days=1), time(), zone).astimezone(timezone.utc)
    return start.replace(tzinfo=None), end.replace(tzinfo=None)


def choose_source(query: Query) -> str:
    """The cheapest table that answers exactly: a rollup unless filters cross dimensions."""
    plain = set(query.plain_dimensions)
    filtered = {f for f, _ in query.filters}
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
    time_column = "ts" if source == "events" else "hour"
    start, end = utc_bounds(query)
    params: dict = {"site": query.site, "start": start, "end": end, "tz": query.tz}
    keep = ["site_id = {site:String}"]
    select, group = [], []
    for name in query.dimensions:
        if name in TIME_BUCKETS:
            expr = TIME_BUCKETS[name].format(t=time_column)
        else:
            expr = "value" if rollup else DIMENSIONS[name]
        select.append(f"{expr} AS {name}")
        group.append(name)
    if source == "agg_dim_hourly":
        (dimension,) = set(query.plain_dimensions) | {f for f, _ in query.filters}
        params["dimension"] = dimension
        keep.append("dimension = {dimension:String}")
    for i, (name, value) in enumerate(query.filters):
        params[f"f{i}"] = value
        keep.append(f"{'value' if rollup else DIMENSIONS[name]} = {{f{i}:String}}")
    for name in query.metrics:
        select.append(f"{METRICS[name][0 if rollup else 1]} AS {name}")
    time_dims = [d for d in query.dimensions if d in TIME_BUCKETS]
    order = time_dims + [f"{query.metrics[0]} DESC"] + [d for d in group if d not in time_dims]
    if source == "agg_dim_hourly" and not time_dims:
        table, where = _dimension_rows(query, keep, params, start, end), []
    else:
        table = source
        where = keep + [f"{time_column} >= {{start:DateTime('UTC')}}",
                        f"{time_column} < {{end:DateTime('UTC')}}"]
    text = (f"SELECT {', '.join(select)} FROM {table}"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + (f" GROUP BY {', '.join(group)}" if group else "")
            + f" ORDER BY {', '.join(order)} LIMIT {int(query.limit)}")
    return Sql(text, params, list(query.dimensions) + list(query.metrics), source)


def _dimension_rows(query: Query, keep: list[str], params: dict, start: datetime,
                    end: datetime) -> str:
    """The one-dimension rollup rows of [start, end) as a subquery: whole UTC days from
    agg_dim_daily, partial days from agg_dim_hourly; for an additive top-N only the N winners."""
    columns = ", ".join(["value"] + sorted({ROLLUP_COLUMNS[m] for m in query.metrics}))
    rows = _dimension_union(columns, keep, params, start, end)
    first = query.metrics[0]
    if first in SKETCHES or query.filters or not query.plain_dimensions:
        return rows
    ranked = _dimension_union(f"value, {ROLLUP_COLUMNS[first]}", keep, params, start, end)
    winners = (f"value IN (SELECT value FROM {ranked} GROUP BY value "
               f"ORDER BY {METRICS[first][0]} DESC, value LIMIT {int(query.limit)})")
    return _dimension_union(columns, keep + [winners], params, start, end)


def _dimension_union(columns: str, keep: list[str], params: dict, start: datetime,
                     end: datetime) -> str:
    hourly_range = "hour >= {start:DateTime('UTC')} AND hour < {end:DateTime('UTC')}"
    first_day = start.date() + timedelta(days=start.time() != time())  # whole days: ceil..floor
    last_day = end.date()
    where = " AND ".join(keep)
    if first_day >= last_day:
        return f"(SELECT {columns} FROM agg_dim_hourly WHERE {where} AND {hourly_range})"
    params.update(day_from=first_day, day_to=last_day)
    daily = (f"SELECT {columns} FROM agg_dim_daily WHERE {where} "
             "AND day >= {day_from:Date} AND day < {day_to:Date}")
    edges = ("((hour >= {start:DateTime('UTC')} AND hour < toDateTime({day_from:Date}, 'UTC')) "
             "OR (hour >= toDateTime({day_to:Date}, 'UTC') AND hour < {end:DateTime('UTC')}))")
    hourly = f"SELECT {columns} FROM agg_dim_hourly WHERE {where} AND {edges}"
    return f"({daily} UNION ALL {hourly})"


def run(client: Client, query: Query, source: str | None = None) -> Result:
    sql = build(query, source)
    rows = client.query(sql.text, parameters=sql.parameters).result_rows
    return Result(sql.columns, [[_plain(v) for v in row] for row in rows], sql.source)


def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value
