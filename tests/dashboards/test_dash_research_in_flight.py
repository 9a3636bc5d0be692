"""Questions of one researcher asked at the same moment in two dashboards processes over one
ClickHouse cannot both spend the last of the budget (``warehouse/ledger.py``, reservations).

chDB opens a database from one process only, so the "processes" here are threads, each
calling ``dashboards.research.answer`` as its own dashboards process would, without the
per-process lock of ``dashboards/app.py``, on one engine. A barrier holds every thread at its
read of what the ledger says was spent until all of them are there: the interleaving in which
a check that reads before the others write lets all of them pass. (Before the reservations,
both questions of the first test were answered: epsilon 2 spent of a budget of 1.) A
ClickHouse server, where the processes would be real, is not available on this machine.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from starlette.datastructures import QueryParams
from starlette.testclient import TestClient

from dashboards import research
from dashboards.app import create_app
from mayak.clock import SYSTEM_CLOCK
from mayak.settings import Settings
from tests.clock import FakeClock
from tests.dashboards.test_dash_research_attacks import (
    DAY,
    TODAY,
    YESTERDAY,
    _researchers,
    _visit,
)
from tests.warehouse.samples import insert_events
from warehouse import ledger

pytestmark = pytest.mark.clickhouse
SPENT_READ = "SELECT epsilon, delta FROM research_ledger"


class Wrapped:
    """The warehouse client; subclasses step in before some of its calls."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class RacingClient(Wrapped):
    """Every thread's first read of the spent budget held at a barrier of ``parties``."""

    def __init__(self, client: Any, parties: int) -> None:
        super().__init__(client)
        self._barrier = threading.Barrier(parties, timeout=60)
        self._passed: set[int] = set()

    def query(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        me = threading.get_ident()
        if SPENT_READ in sql and me not in self._passed:
            self._passed.add(me)
            self._barrier.wait()
        return self._client.query(sql, *args, **kwargs)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, dashboards_host="127.0.0.1")


@pytest.fixture
def data(wh) -> Any:
    rows = []
    for i in range(60):
        rows += _visit(f"az{i}", "AZ", DAY + timedelta(hours=6, minutes=i % 50), 10)
    insert_events(wh, rows)
    return wh


def _question(day: str, epsilon: float) -> QueryParams:
    return QueryParams(
        {"site": "s", "from": day, "to": day, "dimensions": "path", "epsilon": str(epsilon)}
    )


def _ask_together(client: Any, settings: Settings, who: str, questions: list) -> list:
    """Ask ``questions`` at once, one thread each; each one's answer or exception."""
    racing = RacingClient(client, len(questions))
    outcomes: list = [None] * len(questions)

    def ask(i: int) -> None:
        try:
            outcomes[i] = research.answer(racing, settings, who, questions[i])[0]
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(questions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes


def _paid(client: Any, who: str) -> float:
    ((total,),) = client.query(
        "SELECT sum(epsilon) FROM research_ledger WHERE researcher = {r:String} AND repeat = 0",
        parameters={"r": who},
    ).result_rows
    return float(total)


def test_two_questions_at_once_cannot_both_spend_the_last_of_a_budget(data, settings) -> None:
    ledger.set_budget(data, "race2", 1.0, 1e-5, "month", actor="admin")
    outcomes = _ask_together(
        data, settings, "race2", [_question(TODAY, 1.0), _question(YESTERDAY, 1.0)]
    )
    answered = [o for o in outcomes if isinstance(o, dict)]
    refused = [o for o in outcomes if isinstance(o, research.BudgetSpent)]
    assert len(answered) == 1 and len(refused) == 1, outcomes
    assert _paid(data, "race2") == pytest.approx(1.0)
    # the loser was told why, and nothing is left in flight
    assert "budget" in str(refused[0])
    assert ledger.in_flight(data, "race2", SYSTEM_CLOCK.now()) == []


def test_four_questions_at_once_spend_at_most_the_budget(data, settings) -> None:
    """Budget for two questions at epsilon 0.5 each, four asked at once about the same day."""
    ledger.set_budget(data, "race4", 1.0, 1e-5, "month", actor="admin")
    asked = [
        QueryParams({**dict(_question(TODAY, 0.5)), "dimensions": dims})
        for dims in ("path", "country", "browser", "os")
    ]
    outcomes = _ask_together(data, settings, "race4", asked)
    answered = [o for o in outcomes if isinstance(o, dict)]
    assert all(isinstance(o, dict | research.BudgetSpent) for o in outcomes), outcomes
    assert 1 <= len(answered) <= 2, outcomes
    assert _paid(data, "race4") == pytest.approx(0.5 * len(answered))
    assert _paid(data, "race4") <= 1.0 + 1e-9


def test_a_reservation_counts_until_its_lifetime_ends(data, settings, monkeypatch) -> None:
    """A dashboards process that died with a question in flight: its reservation keeps the
    budget taken for ``RESERVATION_LIFETIME``, then stops counting."""
    monkeypatch.setattr(research, "HOLD_WAIT_S", 0.0)
    ledger.set_budget(data, "dead", 1.0, 1e-5, "month", actor="admin")
    clock = FakeClock(SYSTEM_CLOCK.now())
    question = research.question_of(
        research.parse(_question(TODAY, 1.0), settings, clock)[0], (), 1.0, 1e-7, 2
    )
    ledger.reserve(data, "dead", question, (1.0, 1e-7), clock)  # and the process died
    clock.advance(minutes=9)
    with pytest.raises(research.BudgetSpent, match="being answered right now"):
        research.answer(data, settings, "dead", _question(YESTERDAY, 1.0), clock=clock)
    assert _paid(data, "dead") == 0.0
    clock.advance(minutes=2)  # 11 minutes: the reservation is past its lifetime
    payload = research.answer(data, settings, "dead", _question(YESTERDAY, 1.0), clock=clock)[0]
    assert payload["cost"]["epsilon"] == 1.0 and _paid(data, "dead") == pytest.approx(1.0)


class SlowEngine(Wrapped):
    """The question's read of the events takes ``minutes`` (on ``clock``)."""

    def __init__(self, client: Any, clock: FakeClock, minutes: float) -> None:
        super().__init__(client)
        self._clock, self._minutes = clock, minutes

    def query(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        if "FROM events" in sql:
            self._clock.advance(minutes=self._minutes)
        return self._client.query(sql, *args, **kwargs)


@pytest.mark.parametrize("minutes", [1, 6])
def test_an_answer_later_than_half_its_reservation_is_not_released(data, settings, minutes) -> None:
    clock = FakeClock(SYSTEM_CLOCK.now())
    slow = SlowEngine(data, clock, minutes)
    if minutes < 5:
        payload = research.answer(slow, settings, f"slow{minutes}", _question(TODAY, 1.0), clock)[0]
        assert payload["rows"]
    else:
        with pytest.raises(research.QuestionFailed, match="charged all the same"):
            research.answer(slow, settings, f"slow{minutes}", _question(TODAY, 1.0), clock)
    assert _paid(data, f"slow{minutes}") == pytest.approx(1.0)  # charged either way
    assert clock.now() - SYSTEM_CLOCK.now() >= timedelta(minutes=minutes - 1)  # it was slow


class CannotClose(Wrapped):
    """The warehouse takes a reservation but not its closing row (it went away meanwhile)."""

    def insert(self, table: str, data: list, *args: Any, **kwargs: Any) -> Any:
        if table == "research_in_flight" and data[0][-1] == 0:
            raise DatabaseError("Code: 210. Connection refused (test)")
        return self._client.insert(table, data, *args, **kwargs)


def test_a_reservation_that_cannot_be_closed_neither_hides_the_answer_nor_frees_the_budget(
    data, settings, monkeypatch
) -> None:
    monkeypatch.setattr(research, "HOLD_WAIT_S", 0.0)
    ledger.set_budget(data, "unclosed", 2.0, 1e-5, "month", actor="admin")
    payload = research.answer(CannotClose(data), settings, "unclosed", _question(TODAY, 1.0))[0]
    assert payload["rows"] and payload["cost"]["epsilon"] == 1.0
    assert _paid(data, "unclosed") == pytest.approx(1.0)
    (still,) = ledger.in_flight(data, "unclosed", SYSTEM_CLOCK.now())
    assert still.cost[0] == 1.0  # counted besides its ledger row until its lifetime ends
    with pytest.raises(research.BudgetSpent, match="being answered right now"):
        research.answer(data, settings, "unclosed", _question(YESTERDAY, 1.0))
    assert _paid(data, "unclosed") == pytest.approx(1.0)


def test_the_researcher_reads_why_through_the_api(data, settings, monkeypatch) -> None:
    """What a researcher sees of a question held up by another one in flight: HTTP 400 and
    the reason, nothing charged."""
    monkeypatch.setattr(research, "HOLD_WAIT_S", 0.0)
    (auth,) = _researchers(settings, 1, prefix="api")
    ledger.set_budget(data, "api0", 1.0, 1e-5, "month", actor="admin")
    question = research.question_of(
        research.parse(_question(TODAY, 1.0), settings)[0], (), 1.0, 1e-7, 2
    )
    ledger.reserve(data, "api0", question, (1.0, 1e-7))  # another process, still answering
    got = TestClient(create_app(settings, data)).get(
        "/api/research/query",
        headers=auth,
        params={"site": "s", "from": YESTERDAY, "to": YESTERDAY, "dimensions": "path"},
    )
    assert got.status_code == 400, got.text
    assert "being answered right now" in got.text
    assert _paid(data, "api0") == 0.0
