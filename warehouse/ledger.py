"""The research privacy ledger and budgets (``research_ledger``, ``research_budgets``).

Responsible for what was spent, by whom, on which question, what each researcher may spend
per period, and which questions are being answered right now (``research_in_flight``).
Composition of the spent amounts is the accountant's job (``dashboards.dp.Accountant``); this
module only stores and reads rows.

Reservations: a question's cost is written to ``research_in_flight`` before its budget check
reads anything, and closed once its ledger row is written (or it was refused). The checks
count the open reservations of others besides the ledger. Of two questions checked at once in
two dashboards processes, at least one sees the other's reservation (each writes before it
reads, and a read sees every insert that returned before it began), so they cannot both spend
the last of a budget: the one that sees both refuses or waits. A reservation left open by a
process that died counts until ``RESERVATION_LIFETIME`` has passed; no process releases an
answer after half of that (``may_release``), so ignoring it then is safe whatever clock skew
below five minutes separates the hosts.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import orjson
from clickhouse_connect.driver.client import Client

from mayak.clock import SYSTEM_CLOCK, Clock
from mayak.errors import MayakError
from warehouse.question import local_days_in_utc

PERIODS = ("day", "week", "month")
#: how long an open reservation counts against the budget (see the module's docstring)
RESERVATION_LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True)
class Budget:
    """What a researcher may spend per period (calendar periods in UTC)."""

    researcher: str
    epsilon: float
    delta: float
    period: str
    default: bool = False

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """[start, end) of the period that contains ``now`` (UTC)."""
        today = now.astimezone(UTC).date()
        if self.period == "day":
            first, after = today, today + timedelta(days=1)
        elif self.period == "week":
            first = today - timedelta(days=today.weekday())
            after = first + timedelta(days=7)
        else:
            first = today.replace(day=1)
            after = (first + timedelta(days=32)).replace(day=1)
        return _midnight(first), _midnight(after)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def question_hash(question: dict) -> str:
    return hashlib.sha256(orjson.dumps(question, option=orjson.OPT_SORT_KEYS)).hexdigest()


def set_budget(
    client: Client,
    researcher: str,
    epsilon: float,
    delta: float,
    period: str,
    actor: str,
    clock: Clock = SYSTEM_CLOCK,
) -> Budget:
    if not researcher:
        raise MayakError("name the researcher (their token name)")
    if period not in PERIODS:
        raise MayakError(f"period {period!r} -> use one of {', '.join(PERIODS)}")
    if not 0 <= epsilon <= 100 or not 0 <= delta < 1:
        raise MayakError("epsilon must be within [0, 100] and delta within [0, 1)")
    client.insert(
        "research_budgets",
        [[researcher, float(epsilon), float(delta), period, clock.now(), actor]],
        column_names=["researcher", "epsilon", "delta", "period", "set_at", "set_by"],
        settings={"distributed_foreground_insert": 1},
    )
    return Budget(researcher, epsilon, delta, period)


def budget_of(client: Client, researcher: str, default: Budget) -> Budget:
    rows = client.query(
        "SELECT argMax(epsilon, set_at), argMax(delta, set_at), argMax(period, set_at) "
        "FROM research_budgets WHERE researcher = {r:String} HAVING count() > 0",
        parameters={"r": researcher},
    ).result_rows
    if not rows:
        return Budget(researcher, default.epsilon, default.delta, default.period, True)
    epsilon, delta, period = rows[0]
    return Budget(researcher, epsilon, delta, period)


def budgets(client: Client) -> list[Budget]:
    rows = client.query(
        "SELECT researcher, argMax(epsilon, set_at), argMax(delta, set_at), "
        "argMax(period, set_at) FROM research_budgets GROUP BY researcher ORDER BY researcher"
    ).result_rows
    return [Budget(*row) for row in rows]


def spent(
    client: Client, researcher: str, start: datetime, end: datetime
) -> list[tuple[float, float]]:
    """The (epsilon, delta) of every query the researcher paid for in [start, end)."""
    rows = client.query(
        "SELECT epsilon, delta FROM research_ledger WHERE researcher = {r:String} "
        "AND ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')} "
        "AND repeat = 0 ORDER BY ts",
        parameters={
            "r": researcher,
            "start": start.replace(tzinfo=None),
            "end": end.replace(tzinfo=None),
        },
    ).result_rows
    return [(float(e), float(d)) for e, d in rows]


@dataclass(frozen=True)
class InFlight:
    """A question being answered: its reservation, when it was made, the question, its cost."""

    reservation: uuid.UUID
    ts: datetime
    question: dict
    cost: tuple[float, float]


def reserve(
    client: Client,
    researcher: str,
    question: dict,
    cost: tuple[float, float],
    clock: Clock = SYSTEM_CLOCK,
) -> InFlight:
    """Write the open reservation of ``question`` (before its budget is checked)."""
    held = InFlight(uuid.uuid4(), clock.now(), question, cost)
    _write_in_flight(client, researcher, held, 1, held.ts)
    return held


def close(client: Client, researcher: str, held: InFlight, clock: Clock = SYSTEM_CLOCK) -> None:
    """Close a reservation: its question was refused, failed or is in the ledger now."""
    _write_in_flight(client, researcher, held, 0, clock.now())


def _write_in_flight(
    client: Client, researcher: str, held: InFlight, is_open: int, ts: datetime
) -> None:
    client.insert(
        "research_in_flight",
        [
            [
                ts,
                researcher,
                held.reservation,
                orjson.dumps(held.question, option=orjson.OPT_SORT_KEYS).decode(),
                float(held.cost[0]),
                float(held.cost[1]),
                is_open,
            ]
        ],
        column_names=["ts", "researcher", "reservation", "question", "epsilon", "delta", "open"],
        # on a cluster the other processes' next budget check must see this row at once
        settings={"distributed_foreground_insert": 1},
    )


def in_flight(client: Client, researcher: str, now: datetime) -> list[InFlight]:
    """The researcher's open reservations made within ``RESERVATION_LIFETIME`` of ``now``."""
    rows = client.query(
        "SELECT reservation, min(ts), any(question), any(epsilon), any(delta) "
        "FROM research_in_flight WHERE researcher = {r:String} "
        "AND ts >= {since:DateTime64(3, 'UTC')} GROUP BY reservation HAVING min(open) = 1",
        parameters={
            "r": researcher,
            "since": (now - RESERVATION_LIFETIME).astimezone(UTC).replace(tzinfo=None),
        },
    ).result_rows
    return [
        InFlight(rid, ts.replace(tzinfo=UTC), orjson.loads(text), (float(e), float(d)))
        for rid, ts, text, e, d in rows
    ]


def may_release(held: InFlight, now: datetime) -> bool:
    """Whether the answer of ``held`` may still be released (others count it for twice as
    long, so a reservation they stop counting belongs to no answer that is released)."""
    return now - held.ts < RESERVATION_LIFETIME / 2


def data_days(date_from: str, date_to: str, tz: str) -> list[date]:
    """The days of data a question over the local dates ``date_from``..``date_to`` in ``tz``
    reads, as the visitor ids see them: a cookieless id is the keyed hash of the salt of the
    UTC day its event was *processed* on, so the UTC days its time range touches, and one
    more, the day after the last (an event processed after midnight, late or after a worker
    outage, carries the next day's id)."""
    start, end = local_days_in_utc(date.fromisoformat(date_from), date.fromisoformat(date_to), tz)
    first, last = start.date(), (end - timedelta(microseconds=1)).date() + timedelta(days=1)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def spent_by_data_day(
    client: Client, researcher: str, days: list[date] | None = None
) -> dict[date, list[tuple[float, float]]]:
    """The (epsilon, delta) of every paid question (and charged failure) of the researcher
    that read each of ``days`` of data, whenever it was asked (``None``: every day of data
    any of them read, in date order)."""
    rows = client.query(
        "SELECT question, epsilon, delta FROM research_ledger WHERE researcher = {r:String} "
        "AND repeat = 0 AND epsilon > 0 ORDER BY ts",
        parameters={"r": researcher},
    ).result_rows
    return by_data_day([(orjson.loads(text), (float(e), float(d))) for text, e, d in rows], days)


def by_data_day(
    asked: Iterable[tuple[dict, tuple[float, float]]], days: list[date] | None = None
) -> dict[date, list[tuple[float, float]]]:
    """The costs of the (question, cost) pairs ``asked`` on each of ``days`` of data their
    questions read (``None``: every day any of them read, in date order)."""
    wanted = None if days is None else set(days)
    out: dict[date, list[tuple[float, float]]] = {day: [] for day in days or []}
    for question, cost in asked:
        for day in data_days(question["from"], question["to"], question["tz"]):
            if wanted is None or day in wanted:
                out.setdefault(day, []).append(cost)
    return out if days is not None else dict(sorted(out.items()))


def stored_answer(client: Client, researcher: str, digest: str) -> dict | None:
    """The answer first given to this researcher for this exact question, if any (a question
    that failed was charged but has no answer: asked again, it is run and charged again)."""
    rows = client.query(
        "SELECT answer FROM research_ledger WHERE researcher = {r:String} "
        "AND question_hash = {h:String} AND repeat = 0 AND NOT JSONHas(answer, 'failed') "
        "ORDER BY ts LIMIT 1",
        parameters={"r": researcher, "h": digest},
    ).result_rows
    return orjson.loads(rows[0][0]) if rows else None


def record(
    client: Client,
    researcher: str,
    question: dict,
    epsilon: float,
    delta: float,
    answer: dict,
    repeat: bool = False,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    client.insert(
        "research_ledger",
        [
            [
                clock.now(),
                researcher,
                orjson.dumps(question, option=orjson.OPT_SORT_KEYS).decode(),
                question_hash(question),
                float(epsilon),
                float(delta),
                int(repeat),
                orjson.dumps(answer).decode(),
            ]
        ],
        column_names=[
            "ts",
            "researcher",
            "question",
            "question_hash",
            "epsilon",
            "delta",
            "repeat",
            "answer",
        ],
        # on a cluster the next budget check must see this row at once
        settings={"distributed_foreground_insert": 1},
    )
