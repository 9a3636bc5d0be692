"""Turns HTTP query parameters and JSON bodies into checked values (names only; values stay values).

Every value a caller sends is checked here or in ``warehouse.question.Query`` before it reaches
ClickHouse, so bad input is a 400 naming the field, never a 500 or a silently wrapped date.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import orjson
from starlette.datastructures import QueryParams

from dashboards.openapi import PARAMS
from mayak.clock import SYSTEM_CLOCK, Clock
from warehouse.question import DATE_MAX, DATE_MIN, MAX_DAYS, Query, QueryError

DEFAULT_DAYS = 30
AUDIT_MAX_LIMIT = 1000
MAX_SENT = 100_000_000
#: the query parameters that may be given more than once: those the API's description says so of
REPEATABLE = frozenset(name for name, (_, _, repeats) in PARAMS.items() if repeats)


def refuse_repeats(params: QueryParams) -> None:
    """A 400 for ``?site=a&site=b``: which one counts is a guess (Starlette takes the last, a
    proxy or a log reader may take the first), so the audit and the question could disagree
    (HTTP parameter pollution). Only ``REPEATABLE`` parameters may come more than once."""
    seen: set[str] = set()
    for name, _ in params.multi_items():
        if name in seen and name not in REPEATABLE:
            raise QueryError(f"query parameter {name[:40]!r} given more than once")
        seen.add(name)


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    body = dict(pairs)
    if len(body) != len(pairs):
        raise QueryError("the body repeats a key")
    return body


def json_object(raw: bytes) -> dict:
    """A request body as a JSON object, read strictly (RFC 8259): UTF-8 without a BOM, no NaN
    or Infinity, no number beyond a double, no lone surrogate (which ClickHouse's client
    cannot encode), at most 1024 levels deep (``json`` alone hit RecursionError, a 500), and
    no key twice (``{"customer": "a", "customer": "b"}``: ``json`` keeps the last, a proxy or
    a log reader may see the first)."""
    try:
        orjson.loads(raw)  # the strict grammar; the text is read again for its duplicate keys
        body = json.loads(raw, object_pairs_hook=_unique_keys)
    except (orjson.JSONDecodeError, RecursionError) as exc:
        raise QueryError(f"the body is not valid JSON: {str(exc)[:100]}") from exc
    if not isinstance(body, dict):
        raise QueryError("the body must be a JSON object")
    return body


def _csv(params: QueryParams, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    raw = params.get(name)
    return tuple(p.strip() for p in raw.split(",") if p.strip()) if raw else default


def check_date(name: str, value: date) -> date:
    if not DATE_MIN <= value <= DATE_MAX:
        raise QueryError(f"{name} must be between {DATE_MIN} and {DATE_MAX}, got {value}")
    return value


def parse_date(name: str, raw: object) -> date:
    if not isinstance(raw, str):
        raise QueryError(f"{name} must be a date string like 2026-03-01")
    try:
        value = date.fromisoformat(raw)
    except ValueError as exc:
        raise QueryError(f"{name} must be a date like 2026-03-01") from exc
    return check_date(name, value)


def _date(params: QueryParams, name: str, default: date) -> date:
    raw = params.get(name)
    return parse_date(name, raw) if raw else default


def local_today(tz: str, clock: Clock = SYSTEM_CLOCK) -> date:
    """Today's date in the zone ``tz`` (the reports' days)."""
    return clock.now().astimezone(ZoneInfo(tz)).date()


def date_range(params: QueryParams, tz: str, clock: Clock = SYSTEM_CLOCK) -> tuple[date, date]:
    date_to = _date(params, "to", local_today(tz, clock))
    default_from = max(DATE_MIN, date_to - timedelta(days=DEFAULT_DAYS - 1))
    date_from = _date(params, "from", default_from)
    if date_to < date_from or (date_to - date_from).days > MAX_DAYS:
        raise QueryError(f"from..to must be ordered and at most {MAX_DAYS} days")
    return date_from, date_to


def site_of(params: QueryParams) -> str:
    site = params.get("site")
    if not site:
        raise QueryError("query parameter 'site' is required")
    return site


def int_param(params: QueryParams, name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(params.get(name, str(default)))
    except ValueError as exc:
        raise QueryError(f"{name} must be a whole number") from exc
    if not low <= value <= high:
        raise QueryError(f"{name} must be between {low} and {high}, got {value}")
    return value


def audit_limit(params: QueryParams) -> int:
    return int_param(params, "limit", 100, 1, AUDIT_MAX_LIMIT)


def sends_body(body: dict, today: date) -> tuple[str, int, date]:
    """``site`` (string), ``sent`` (whole number 1..1e8), ``sent_on`` (date string, default
    today)."""
    site, sent, sent_on = body.get("site", ""), body.get("sent"), body.get("sent_on")
    if not isinstance(site, str):
        raise QueryError("site must be a string")
    if isinstance(sent, bool) or not isinstance(sent, int):
        raise QueryError("sent must be a whole number, e.g. 1200")
    if not 1 <= sent <= MAX_SENT:
        raise QueryError(f"sent must be between 1 and {MAX_SENT}, got {sent}")
    return site, sent, today if sent_on is None else parse_date("sent_on", sent_on)


def customer_body(body: dict) -> tuple[str, bool]:
    """``customer`` (non-empty string) and ``opt_out`` (boolean, default false)."""
    customer, opt_out = body.get("customer", ""), body.get("opt_out", False)
    if not isinstance(customer, str) or not customer.strip():
        raise QueryError("give the portal customer id as 'customer' (a string)")
    if not isinstance(opt_out, bool):
        raise QueryError("opt_out must be true or false")
    return customer.strip(), opt_out


def query_from(
    params: QueryParams,
    tz: str,
    metrics: tuple[str, ...] = ("pageviews",),
    dimensions: tuple[str, ...] = (),
    clock: Clock = SYSTEM_CLOCK,
) -> Query:
    """``site``, ``from``, ``to``, ``metrics=a,b``, ``dimensions=a,b``, ``filter=dim:value``
    (repeatable; a prop: ``filter=prop:<key>:value``), ``limit``."""
    filters = []
    for raw in params.getlist("filter"):
        name, sep, value = raw.partition(":")
        if name == "prop" and sep:  # the dimension itself holds a colon: prop:<key>
            key, sep, value = value.partition(":")
            name = f"prop:{key}"
        if not sep:
            raise QueryError("filter must look like dimension:value")
        filters.append((name, value))
    try:
        limit = int(params.get("limit", "100"))
    except ValueError as exc:
        raise QueryError("limit must be a number") from exc
    date_from, date_to = date_range(params, tz, clock)
    return Query(
        site=site_of(params),
        metrics=_csv(params, "metrics", metrics),
        dimensions=_csv(params, "dimensions", dimensions),
        filters=tuple(filters),
        date_from=date_from,
        date_to=date_to,
        limit=limit,
        tz=tz,
    )
