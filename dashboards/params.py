"""Turns HTTP query parameters into a read-path ``Query`` (names only; values stay values)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from starlette.datastructures import QueryParams

from warehouse.query import Query, QueryError

DEFAULT_DAYS = 30


def _csv(params: QueryParams, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    raw = params.get(name)
    return tuple(p.strip() for p in raw.split(",") if p.strip()) if raw else default


def _date(params: QueryParams, name: str, default: date) -> date:
    raw = params.get(name)
    try:
        return date.fromisoformat(raw) if raw else default
    except ValueError as exc:
        raise QueryError(f"{name} must be a date like 2026-03-01") from exc


def date_range(params: QueryParams, tz: str) -> tuple[date, date]:
    today = datetime.now(ZoneInfo(tz)).date()
    date_to = _date(params, "to", today)
    return _date(params, "from", date_to - timedelta(days=DEFAULT_DAYS - 1)), date_to


def site_of(params: QueryParams) -> str:
    site = params.get("site")
    if not site:
        raise QueryError("query parameter 'site' is required")
    return site


def query_from(params: QueryParams, tz: str, metrics: tuple[str, ...] = ("pageviews",),
               dimensions: tuple[str, ...] = ()) -> Query:
    """``site``, ``from``, ``to``, ``metrics=a,b``, ``dimensions=a,b``, ``filter=dim:value``
    (repeatable), ``limit``."""
    filters = []
    for raw in params.getlist("filter"):
        name, sep, value = raw.partition(":")
        if not sep:
            raise QueryError("filter must look like dimension:value")
        filters.append((name, value))
    try:
        limit = int(params.get("limit", "100"))
    except ValueError as exc:
        raise QueryError("limit must be a number") from exc
    date_from, date_to = date_range(params, tz)
    return Query(site=site_of(params), metrics=_csv(params, "metrics", metrics),
                 dimensions=_csv(params, "dimensions", dimensions), filters=tuple(filters),
                 date_from=date_from, date_to=date_to, limit=limit, tz=tz)
