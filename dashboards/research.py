"""Research API output: aggregate cells only, small cells suppressed, optional Laplace noise.

k-anonymity here means: a cell (one combination of dimension values) is published only if it
describes at least ``min_visitors`` distinct visitors; otherwise it is dropped and counted as
suppressed. Totals are not returned, so suppressed cells cannot be recovered by subtraction.
With ``epsilon`` > 0 every published count gets Laplace(1/epsilon) noise (each visitor's
events touch a cell's counts, so this is event-level, not user-level, DP: a documented limit).
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

from warehouse.metrics import RATIOS
from warehouse.query import METRICS, Query, QueryError, Result


def research_query(query: Query) -> Query:
    """Every research question carries `visitors`, the measure suppression is decided on.
    Only counts are published (noise is calibrated for a count, not for an average)."""
    ratios = [m for m in query.metrics if m in RATIOS]
    if ratios:
        raise QueryError(f"research publishes counts only, not {', '.join(ratios)}")
    if "visitors" in query.metrics:
        return query
    return replace(query, metrics=query.metrics + ("visitors",))


def publish(result: Result, min_visitors: int, epsilon: float = 0.0,
            rng: random.Random | None = None) -> dict:
    """The cells safe to publish, plus how many were suppressed."""
    rng = rng or random.SystemRandom()
    dimension_cols = [c for c in result.columns if c not in _metric_names(result)]
    cells, suppressed = [], 0
    for record in result.records():
        if record["visitors"] < min_visitors:
            suppressed += 1
            continue
        if epsilon > 0:
            for name in _metric_names(result):
                record[name] = max(0, round(record[name] + _laplace(rng, 1 / epsilon)))
        cells.append(record)
    return {"columns": result.columns, "dimensions": dimension_cols, "rows": cells,
            "suppressed_cells": suppressed, "min_visitors": min_visitors,
            "noise": {"mechanism": "laplace", "epsilon": epsilon} if epsilon > 0 else None}


def _metric_names(result: Result) -> list[str]:
    return [c for c in result.columns if c in METRICS]


def _laplace(rng: random.Random, scale: float) -> float:
    u = rng.random() - 0.5
    return -scale * math.copysign(1.0, u) * math.log(1 - 2 * abs(u))
