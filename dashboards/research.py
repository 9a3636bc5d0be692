"""The research API: differentially private answers within a privacy budget per researcher.

Responsible for one research question end to end: parse it (``metrics``, ``dimensions``,
``filter``, dates, ``epsilon``), answer an identical question again from the ledger at no
cost, otherwise reserve its cost and check the researcher's budget with the accountant
*before* touching the data, counting the researcher's other questions in flight in any
dashboards process (``warehouse.ledger``, reservations; a refused question spends nothing),
read the bounded per-cell sums (``warehouse.bounded``), release them through OpenDP
(``dashboards.dp``), write the ledger row, and say what the answer cost and what is left.
The guarantee is documented in README ("Research answers"); the unit of privacy is one
visitor id.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from starlette.datastructures import QueryParams

from dashboards import params as qp
from dashboards.auth import valid_name
from dashboards.dp import Accountant, Mechanism, Plan
from mayak.clock import SYSTEM_CLOCK, Clock
from mayak.errors import MayakError
from mayak.settings import Settings
from warehouse import bounded, ledger
from warehouse.client import WarehouseBusy
from warehouse.question import Query, QueryError
from warehouse.retention import load_schedule

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

log = logging.getLogger("mayak.research")

FORMATS = ("json", "csv", "parquet")
MIN_EPSILON, MAX_EPSILON = 0.01, 10.0


class BudgetSpent(MayakError):
    """The researcher's privacy budget does not cover the question (nothing was spent)."""


class QuestionFailed(MayakError):
    """The question was charged but could not be answered (a limit, an engine error)."""


#: what a failed question says, whatever failed: the reason could tell about the data
FAILED = (
    "this question could not be answered (the warehouse stopped it: too long, too large or "
    "an error); its cost epsilon={epsilon:g} was charged all the same, because whether a "
    "question fails can depend on the data -> narrow the date range or drop a dimension"
)


@lru_cache(maxsize=256)
def _mechanism(
    metrics: tuple[str, ...], epsilon: float, delta: float, max_cells: int, clips: tuple[int, ...]
) -> Mechanism:
    return Mechanism(Plan(metrics, epsilon, delta, max_cells, dict(zip(metrics, clips))))


def default_budget(settings: Settings) -> ledger.Budget:
    return ledger.Budget(
        "", settings.research_budget_epsilon, settings.research_budget_delta, "month", True
    )


def parse(
    params: QueryParams, settings: Settings, clock: Clock = SYSTEM_CLOCK
) -> tuple[Query, tuple[str, ...], float, str]:
    """(place/time/cells of the question, metrics besides visitors, epsilon, format)."""
    raw = params.get("metrics") or "visitors"
    metrics = tuple(sorted({m.strip() for m in raw.split(",") if m.strip()} - {"visitors"}))
    kept = QueryParams([(k, v) for k, v in params.multi_items() if k != "metrics"])
    query = qp.query_from(kept, settings.report_timezone, metrics=("visitors",), clock=clock)
    bounded.check(query, metrics)
    try:
        epsilon = float(params.get("epsilon", settings.research_epsilon))
    except ValueError as exc:
        raise QueryError("epsilon must be a number, e.g. epsilon=0.5") from exc
    if not MIN_EPSILON <= epsilon <= MAX_EPSILON:
        raise QueryError(f"epsilon must be within [{MIN_EPSILON}, {MAX_EPSILON}]")
    fmt = params.get("format", "json")
    if fmt not in FORMATS:
        raise QueryError(f"format must be one of {', '.join(FORMATS)}")
    return query, metrics, epsilon, fmt


def question_of(
    query: Query, metrics: tuple[str, ...], epsilon: float, delta: float, max_cells: int
) -> dict:
    """The question as the ledger keys it: order of metrics and dimensions, the limit and the
    format change nothing in what is released, so they do not make a new question."""
    return {
        "site": query.site,
        "from": str(query.date_from),
        "to": str(query.date_to),
        "tz": query.tz,
        "metrics": list(metrics),
        "dimensions": sorted(query.dimensions),
        "filters": sorted([list(f) for f in query.filters]),
        "epsilon": epsilon,
        "delta": delta,
        "max_cells": max_cells,
    }


def answer(
    client: Client,
    settings: Settings,
    researcher: str,
    params: QueryParams,
    clock: Clock = SYSTEM_CLOCK,
    check_site: Callable[[str], None] = lambda site: None,
) -> tuple[dict, dict, str]:
    """(payload, question, format) for one research call. ``check_site`` raises for a site
    without data: called once the question is well-formed and before anything is spent or
    recorded (a mistyped site must not cost budget)."""
    query, metrics, epsilon, fmt = parse(params, settings, clock)
    check_site(query.site)
    question = question_of(
        query, metrics, epsilon, settings.research_delta, settings.research_max_cells
    )
    digest = ledger.question_hash(question)
    budget = ledger.budget_of(client, researcher, default_budget(settings))
    start, end = budget.window(clock.now())
    stored = ledger.stored_answer(client, researcher, digest)
    if stored is not None:
        ledger.record(client, researcher, question, 0.0, 0.0, stored, repeat=True, clock=clock)
        past = ledger.spent(client, researcher, start, end)
        cost = (0.0, 0.0)
        released = stored
    else:
        clips = tuple(bounded.METRICS[m].clip for m in metrics)
        mechanism = _mechanism(
            metrics, epsilon, settings.research_delta, settings.research_max_cells, clips
        )
        cost = mechanism.cost
        held, past = _hold(client, researcher, question, cost, budget, (start, end), clock)
        try:
            released = _release(
                client, settings, researcher, query, metrics, mechanism, held, clock
            )
        finally:
            _close(client, researcher, held, clock)
        past = past + [cost]
    payload = _payload(query, metrics, released, cost, budget, Accountant.total(past), end)
    return payload, question, fmt


def _release(
    client: Client,
    settings: Settings,
    researcher: str,
    query: Query,
    metrics: tuple[str, ...],
    mechanism: Mechanism,
    held: ledger.InFlight,
    clock: Clock,
) -> dict:
    """Read the question's bounded cells, release them through the mechanism and write the
    ledger row; a failure is charged all the same (``QuestionFailed``)."""
    question, cost = held.question, held.cost
    ordered = replace(query, dimensions=tuple(sorted(query.dimensions)))
    try:
        cells = bounded.bounded_cells(
            client,
            ordered,
            ("visitors", *metrics),
            settings.research_max_cells,
            mechanism.plan.clip,
            bounded.research_limits(settings.query_max_memory_mb * 2**20),
        )
        released = _rows(query, mechanism, mechanism.release(cells))
        if not ledger.may_release(held, clock.now()):  # others stopped counting its reservation
            raise TimeoutError("the question took longer than its reservation")
    except WarehouseBusy:
        raise  # the slot was taken by others' queries: nothing ran, nothing is charged
    except Exception as exc:  # whatever stopped it, the answer to "did it fail" is paid
        log.warning("research question of %s failed: %s", researcher, str(exc)[:300])
        failed = {"failed": True}
        ledger.record(client, researcher, question, cost[0], cost[1], failed, clock=clock)
        raise QuestionFailed(FAILED.format(epsilon=cost[0])) from exc
    ledger.record(client, researcher, question, cost[0], cost[1], released, clock=clock)
    return released


#: how often a question whose budget is taken only by questions still in flight waits and
#: tries again (they may be refused, or fail), and the longest wait before a try, in seconds
HOLD_TRIES, HOLD_WAIT_S = 6, 0.4


def _hold(
    client: Client,
    researcher: str,
    question: dict,
    cost: tuple[float, float],
    budget: ledger.Budget,
    window: tuple[datetime, datetime],
    clock: Clock,
) -> tuple[ledger.InFlight, list[tuple[float, float]]]:
    """Reserve the question's cost, then check the budget with what the ledger holds and
    what the researcher's other questions in flight (in any dashboards process) reserved.
    Returns the reservation and the ledger's spending in the period ``window``; raises
    ``BudgetSpent`` (the reservation closed) when the ledger alone, or still after the last
    try the ledger with the questions in flight, leaves too little."""
    days = ledger.data_days(question["from"], question["to"], question["tz"])
    for attempt in range(1, HOLD_TRIES + 1):
        held = ledger.reserve(client, researcher, question, cost, clock)
        try:
            others = [
                flight
                for flight in ledger.in_flight(client, researcher, clock.now())
                if flight.reservation != held.reservation
            ]
            past = ledger.spent(client, researcher, *window)
            by_day = ledger.spent_by_data_day(client, researcher, days)
        except BaseException:
            _close(client, researcher, held, clock)
            raise
        refusal = _refusal(researcher, cost, budget, window, past, by_day, ())
        crowded = refusal is None and bool(others)
        if crowded:  # fits the ledger: does it fit with the others' reservations too?
            crowded = _refusal(researcher, cost, budget, window, past, by_day, others) is not None
        if refusal is None and not crowded:
            return held, past
        _close(client, researcher, held, clock)
        if refusal is not None:
            raise refusal
        if attempt < HOLD_TRIES:  # random waits: two that saw each other try at different times
            clock.sleep_blocking(random.uniform(0.2, 1.0) * HOLD_WAIT_S * attempt)
    raise BudgetSpent(
        f"privacy budget taken by questions of {researcher} being answered right now: this "
        f"question costs epsilon={cost[0]:g}, and with them it would exceed the budget "
        "-> ask again once they are answered (an answered question may leave too little)"
    )


def _close(client: Client, researcher: str, held: ledger.InFlight, clock: Clock) -> None:
    """Close a reservation; if the warehouse cannot take that now, the reservation counts
    until its lifetime ends (more budget taken for a while, never less) and what the
    question came to (its answer, refusal or failure) is what the caller sees."""
    try:
        ledger.close(client, researcher, held, clock)
    except Exception as exc:
        log.warning(
            "closing the reservation of a question of %s failed (%s); it counts for %s",
            researcher,
            str(exc)[:200],
            ledger.RESERVATION_LIFETIME,
        )


def _refusal(
    researcher: str,
    cost: tuple[float, float],
    budget: ledger.Budget,
    window: tuple[datetime, datetime],
    past: list[tuple[float, float]],
    by_day: dict[date, list[tuple[float, float]]],
    others: Sequence[ledger.InFlight],
) -> BudgetSpent | None:
    """Why the budget cannot pay ``cost`` besides the ledger's spending (``past`` in the
    period ``window``, ``by_day`` on each day of data the question reads) and the
    reservations ``others``, or None."""
    start, end = window
    paid = past + [o.cost for o in others if start <= o.ts < end]
    after = Accountant.total(paid + [cost])
    if after[0] > budget.epsilon + 1e-9 or after[1] > budget.delta:
        left = _left(budget, Accountant.total(paid))
        return BudgetSpent(
            f"privacy budget spent: this question costs epsilon={cost[0]:g}, "
            f"delta={cost[1]:.3g}; {researcher} has epsilon={left['epsilon']:g}, "
            f"delta={left['delta']:.3g} left this {budget.period} (until "
            f"{end.date()}) -> ask for a smaller epsilon=, repeat an earlier question "
            f"(free), or ask an admin: mayak research budget set {researcher} ..."
        )
    if others:
        reserved = ledger.by_data_day(((o.question, o.cost) for o in others), list(by_day))
        by_day = {day: costs + reserved[day] for day, costs in by_day.items()}
    return _data_days_refusal(researcher, cost, budget, by_day)


@lru_cache(maxsize=1)
def _product_keep() -> str:
    """How long visitors' events are kept, in words ("13 months": the retention schedule's
    product purpose, "13 MONTH")."""
    count, unit = str(load_schedule().purposes["product"]["keep"]).split()
    return f"{count} {unit.lower()}{'' if count == '1' else 's'}"


def _composed_by_day(
    by_day: dict[date, list[tuple[float, float]]], *also: tuple[float, float]
) -> dict[date, tuple[float, float]]:
    """Each day's (epsilon, delta) paid, composed with ``also`` (a new question's cost);
    days paid by the same questions are composed once (a range question pays many days)."""
    totals: dict[tuple, tuple[float, float]] = {}
    out = {}
    for day, costs in by_day.items():
        key = tuple(costs)
        if key not in totals:
            totals[key] = Accountant.total([*costs, *also])
        out[day] = totals[key]
    return out


def _data_days_refusal(
    researcher: str,
    cost: tuple[float, float],
    budget: ledger.Budget,
    by_day: dict[date, list[tuple[float, float]]],
) -> BudgetSpent | None:
    """Why a question would take a day of data it reads (the keys of ``by_day``, with what
    was paid and reserved on each) past the budget, or None.

    The period budget starts again each month, but a day's visitors stay in the warehouse
    for 13 months: asked about the same days every month, the same visitor-day would be paid
    for 13 times (red team, 2026-12-02). So every day of data also has the budget once, for
    good: what all of a researcher's questions that read it cost, whenever they were asked.
    """
    days = list(by_day)
    worst: tuple[float, date] | None = None
    for day, total in _composed_by_day(by_day, cost).items():
        over = total[0] > budget.epsilon + 1e-9 or total[1] > budget.delta
        if over and (worst is None or total[0] > worst[0]):
            worst = (total[0], day)
    if worst is None:
        return None
    spent_days = [day for day, costs in by_day.items() if costs]
    return BudgetSpent(
        f"privacy budget spent on these days of data: this question reads {days[0]} to "
        f"{days[-1]} (UTC, with the day after, whose ids late events carry), and on "
        f"{worst[1]} it would make epsilon={worst[0]:g}; every day of data may cost "
        f"{researcher} at most epsilon={budget.epsilon:g} (delta={budget.delta:.3g}) in "
        f"all, whichever {budget.period} it is asked in (its visitors are kept "
        f"{_product_keep()}) "
        f"-> ask about days after {max(spent_days)}, ask for a smaller epsilon=, or "
        "repeat an earlier question (free)"
    )


def _rows(query: Query, mechanism: Mechanism, released: dict) -> dict:
    """The stored answer: released cells (sorted dimensions, as computed) and the noise."""
    order = sorted(query.dimensions)
    zone = ZoneInfo(query.tz)
    cells = []
    for key, values in released.items():
        labels = dict(zip(order, bounded.cell_values(key)))
        if "hour" in labels:  # as the product API shows it: local time with its offset
            labels["hour"] = datetime.fromisoformat(labels["hour"]).replace(tzinfo=zone).isoformat()
        cells.append({**labels, **values})
    cells.sort(key=lambda c: (-c["visitors"], [c[d] for d in order]))
    return {
        "cells": cells,
        "noise": mechanism.noise(),
        "max_cells_per_visitor": mechanism.plan.max_cells,
        "epsilon": mechanism.plan.epsilon,
        "delta": mechanism.plan.delta,
    }


def _left(budget: ledger.Budget, total: tuple[float, float]) -> dict:
    return {
        "epsilon": max(0.0, budget.epsilon - total[0]),
        "delta": max(0.0, budget.delta - total[1]),
    }


def _payload(
    query: Query,
    metrics: tuple[str, ...],
    stored: dict,
    cost: tuple[float, float],
    budget: ledger.Budget,
    total: tuple[float, float],
    end: datetime,
) -> dict:
    dims = list(query.dimensions)
    columns = dims + ["visitors", *metrics]
    rows = [{c: cell[c] for c in columns} for cell in stored["cells"][: query.limit]]
    return {
        "columns": columns,
        "dimensions": dims,
        "rows": rows,
        "privacy": {
            "model": "user-level differential privacy (OpenDP), unit: one visitor id",
            "epsilon": stored["epsilon"],
            "delta": stored["delta"],
            "max_cells_per_visitor": stored["max_cells_per_visitor"],
            "noise": stored["noise"],
            "note": "values are unbiased (may be negative) except visitors, which are "
            "published only above the noisy threshold",
        },
        "cost": {"epsilon": cost[0], "delta": cost[1], "repeat": cost == (0.0, 0.0)},
        "budget": {
            "period": budget.period,
            "until": end.isoformat(),
            "epsilon": budget.epsilon,
            "delta": budget.delta,
            "spent_epsilon": total[0],
            "spent_delta": total[1],
            **{f"left_{k}": v for k, v in _left(budget, total).items()},
        },
    }


def own_budget(
    client: Client, settings: Settings, researcher: str, clock: Clock = SYSTEM_CLOCK
) -> dict:
    """What a researcher may still spend this period, and on each day of data already
    paid for (GET research/budget; costs nothing). A day of data has the budget once, for
    good (``_check_data_days``): ``data_days`` lists what is left on every day some question
    read, so a researcher sees which days are spent before asking, not from a refusal."""
    budget = ledger.budget_of(client, researcher, default_budget(settings))
    start, end = budget.window(clock.now())
    total = Accountant.total(ledger.spent(client, researcher, start, end))
    days = []
    for day, on_day in _composed_by_day(ledger.spent_by_data_day(client, researcher)).items():
        left = _left(budget, on_day)
        days.append(
            {
                "day": day.isoformat(),
                "spent_epsilon": on_day[0],
                "spent_delta": on_day[1],
                "left_epsilon": left["epsilon"],
                "left_delta": left["delta"],
            }
        )
    return {
        **_budget_dict(budget),
        "until": end.isoformat(),
        "spent_epsilon": total[0],
        "spent_delta": total[1],
        **{f"left_{k}": v for k, v in _left(budget, total).items()},
        "data_days": days,
        "default_question": {
            "epsilon": settings.research_epsilon,
            "delta": settings.research_delta,
        },
    }


def set_budget(client: Client, body: dict, actor: str, clock: Clock = SYSTEM_CLOCK) -> dict:
    """An admin sets a researcher's budget (POST admin/research/budget)."""
    try:
        epsilon = float(body.get("epsilon", ""))
        delta = float(body.get("delta", 0.0))
    except (TypeError, ValueError) as exc:
        raise QueryError("epsilon and delta must be numbers") from exc
    researcher = body.get("researcher", "")
    # a budget belongs to a token name: anything else (a NUL, 100,000 characters, an object
    # turned into "{'a': 1}") could never be spent and only filled the ledger
    if not valid_name(researcher):
        raise QueryError("researcher must be a token name: 1-128 letters, digits, '-', '_', '.'")
    done = ledger.set_budget(
        client,
        researcher,
        epsilon,
        delta,
        str(body.get("period", "month")),
        actor,
        clock,
    )
    return _budget_dict(done)


def show_budgets(client: Client, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> dict:
    """Every researcher with a budget set, with what they spent this period."""
    shown = []
    for budget in ledger.budgets(client):
        start, end = budget.window(clock.now())
        total = Accountant.total(ledger.spent(client, budget.researcher, start, end))
        shown.append(
            {
                **_budget_dict(budget),
                "until": end.isoformat(),
                "spent_epsilon": total[0],
                "spent_delta": total[1],
            }
        )
    return {"budgets": shown, "default": _budget_dict(default_budget(settings))}


def _budget_dict(budget: ledger.Budget) -> dict:
    return {
        "researcher": budget.researcher,
        "epsilon": budget.epsilon,
        "delta": budget.delta,
        "period": budget.period,
    }
