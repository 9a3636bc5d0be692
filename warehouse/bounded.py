"""The research read path: per-cell sums in which every visitor's contribution is bounded.

Responsible for the SQL behind differentially private answers (``dashboards.dp``). Over raw
web events (the research scope: the event types a browser sends) it groups by visitor and
cell first, so every count a decision rests on is exact (no sketches), then:

* clips each metric per visitor and cell (``CLIP``): a visitor adds at most that much;
* keeps at most ``max_cells`` cells per visitor (``LIMIT n BY visitor_id``), chosen by a hash
  of the visitor and the cell, i.e. by the visitor's own data only, never by other visitors';
* sums over visitors per cell; ``visitors`` is the number of distinct visitors kept in a cell.

Dimensions, time buckets and filters are the whitelisted expressions of ``warehouse.query``;
values travel as bound parameters. No row per visitor ever leaves ClickHouse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client

from warehouse.metrics import WEB
from warehouse.question import DIMENSIONS, TIME_BUCKETS, Query, QueryError, utc_bounds


@dataclass(frozen=True)
class Countable:
    """A research metric: its per-(visitor, cell) SQL, its default cap and meaning."""

    expression: str
    clip: int
    meaning: str


METRICS: dict[str, Countable] = {
    "visitors": Countable("1", 1, "distinct visitors with at least one web event"),
    "visits": Countable("uniqExact(session_id)", 2, "sessions with at least one web event"),
    "pageviews": Countable("countIf(event_type = 'pageview')", 5, "pageview events"),
    "engaged_seconds": Countable(
        "intDiv(sumIf(engaged_ms, event_type = 'engagement'), 1000)",
        120,
        "engaged time (engagement events), whole seconds",
    ),
    "custom_events": Countable("countIf(event_type = 'custom')", 3, "custom events"),
    "outbound_clicks": Countable("countIf(event_type = 'outbound')", 3, "clicks on outbound links"),
    "web_events": Countable(
        "count()", 10, "web events of every type (pageview, engagement, custom, outbound)"
    ),
}


def research_limits(memory_bytes: int) -> dict:
    """ClickHouse settings of a research read, laid over the dashboards' read limits.

    Whether a query trips a limit must not depend on one visitor: the dashboards' cap on
    GROUP BY rows (``group_by_overflow_mode=throw``) flips on the exact number of
    (visitor, cell) pairs, a noise-free yes/no about the data (red team, 2026-12-02: one
    visitor present or not, told by a 422 that cost nothing). So research has no group cap,
    and grouping and sorting spill to disk at half the memory limit instead of failing on
    it. The time limit stays (a failure is charged anyway: ``dashboards.research``)."""
    spill = max(1, memory_bytes // 2)
    return {
        "max_rows_to_group_by": 0,
        "max_bytes_before_external_group_by": spill,
        "max_bytes_before_external_sort": spill,
    }


def cell_key(values: Sequence[Any]) -> str:
    """One cell's dimension values as one string key (the mechanism keys cells by strings):
    a JSON array, so that no value (a path may hold any character, U+001F too) can shift
    into the next dimension."""
    return orjson.dumps(list(values)).decode()


def check(query: Query, metrics: tuple[str, ...]) -> None:
    """Refuse what the research path does not answer, naming the field."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise QueryError(
            f"unknown research metric {unknown[0]!r}; allowed: "
            f"{', '.join(METRICS)} (counts only, bounded per visitor)"
        )
    names = [*query.dimensions, *(f for f, _ in query.filters)]
    other = [n for n in names if n not in DIMENSIONS and n not in TIME_BUCKETS]
    if other:
        raise QueryError(
            f"research does not break down or filter by {other[0]!r}; allowed: "
            f"{', '.join([*DIMENSIONS, *TIME_BUCKETS])}"
        )
    if not query.dimensions:
        raise QueryError("research queries break down by at least one dimension")


def bounded_cells(
    client: Client,
    query: Query,
    metrics: tuple[str, ...],
    max_cells: int,
    clip: dict[str, int],
    settings: dict | None = None,
) -> dict[str, dict[str, int]]:
    """``{cell key: {metric: bounded sum}}`` for every cell with at least one visitor
    (``query`` gives site, dates, dimensions and filters; ``metrics`` what to sum;
    ``settings``: ClickHouse settings of the read, e.g. ``research_limits``)."""
    check(query, metrics)
    start, end = utc_bounds(query)
    params: dict = {
        "site": query.site,
        "start": start,
        "end": end,
        "tz": query.tz,
        "max_cells": max_cells,
    }
    keep = [
        "site_id = {site:String}",
        WEB,
        "ts >= {start:DateTime('UTC')}",
        "ts < {end:DateTime('UTC')}",
    ]
    for i, (name, value) in enumerate(query.filters):
        params[f"f{i}"] = value
        keep.append(f"{DIMENSIONS[name]} = {{f{i}:String}}")
    cells = []
    for i, name in enumerate(query.dimensions):
        expr = TIME_BUCKETS[name].format(t="ts") if name in TIME_BUCKETS else DIMENSIONS[name]
        cells.append(f"toString({expr}) AS d{i}")
    aliases = [f"d{i}" for i in range(len(query.dimensions))]
    metrics = tuple(m for m in metrics if m != "visitors")
    per_visitor = [
        f"least({METRICS[m].expression}, {int(clip[m])}) AS m{j}" for j, m in enumerate(metrics)
    ]
    inner = (
        f"SELECT visitor_id, {', '.join(cells + per_visitor)} FROM events "
        f"WHERE {' AND '.join(keep)} GROUP BY visitor_id, {', '.join(aliases)} "
        f"ORDER BY visitor_id, cityHash64(visitor_id, {', '.join(aliases)}) "
        "LIMIT {max_cells:UInt32} BY visitor_id"
    )
    sums = [f"toInt64(sum(m{j}))" for j in range(len(metrics))]
    text = (
        f"SELECT {', '.join(aliases)}, toInt64(count()) AS visitors"
        + "".join(f", {s}" for s in sums)
        + f" FROM ({inner}) GROUP BY {', '.join(aliases)}"
    )
    rows = client.query(text, parameters=params, settings=settings or {}).result_rows
    width = len(aliases)
    return {
        cell_key(row[:width]): {
            "visitors": row[width],
            **dict(zip(metrics, row[width + 1 :])),
        }
        for row in rows
    }


def cell_values(key: str) -> list[str]:
    return orjson.loads(key)
