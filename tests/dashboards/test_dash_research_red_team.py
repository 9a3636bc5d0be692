"""The red team's attacks on the research API (2026-12-02), each of which worked before:

* a question that trips a data-dependent limit answered 422 "query too heavy" and cost
  nothing, so the GROUP BY cap told, exactly and for free, whether one visitor was there;
* the budget started again every month while the visitors' data stays 13 months, so the same
  visitor-day could be paid for 13 times;
* a page path holding U+001F (the cell-key separator) shifted its label into the next
  dimension.

The same data and helpers as ``test_dash_research_attacks``; the real API over chDB.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from starlette.testclient import TestClient

from dashboards.app import create_app
from mayak.settings import Settings
from tests.clock import FakeClock
from tests.dashboards.test_dash_research_attacks import (
    DAY,
    PAGE,
    TODAY,
    _ask,
    _researchers,
    _visit,
)
from tests.warehouse.samples import insert_events
from warehouse.retention import load_schedule

pytestmark = pytest.mark.clickhouse


def _readers(german: bool) -> list[dict]:
    rows = []
    for i in range(200):
        rows += _visit(f"az{i}", "AZ", DAY + timedelta(hours=6, minutes=i % 50), 10)
    if german:
        rows += _visit("de", "DE", DAY + timedelta(hours=12), 123)
    return rows


def _spent(wh, researcher: str) -> float:
    ((spent,),) = wh.query(
        "SELECT sum(epsilon) FROM research_ledger WHERE researcher = {r:String} AND repeat = 0",
        parameters={"r": researcher},
    ).result_rows
    return float(spent)


@pytest.mark.parametrize("german", [True, False])
def test_the_group_cap_no_longer_tells_whether_a_visitor_was_there(tmp_path, wh, german) -> None:
    # the attack's setting: a cap just under the question's (visitor, cell) pairs
    settings = Settings(data_dir=tmp_path, dashboards_host="127.0.0.1", query_max_groups=200)
    insert_events(wh, _readers(german))
    api = TestClient(create_app(settings, wh))
    (auth,) = _researchers(settings, 1, "cap")
    answers = [_ask(api, auth, epsilon=str(1 + i / 100), metrics="visitors") for i in range(3)]
    # answered (noisy) with the German reader as without: no 422, each one paid
    assert all(a["rows"] and a["cost"]["epsilon"] > 0 for a in answers)
    assert _spent(wh, "cap0") == pytest.approx(sum(a["cost"]["epsilon"] for a in answers))


class FailingBoundedReads:
    """The warehouse client, with the research read (its ``LIMIT n BY visitor_id``) failing
    as a limit would while ``failing`` is set."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.failing = True

    def query(self, text: str, *args: Any, **kwargs: Any) -> Any:
        if self.failing and "BY visitor_id" in text:
            raise DatabaseError("Code: 158. DB::Exception: Limit for rows to read exceeded")
        return self.client.query(text, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_a_failed_question_is_charged_says_nothing_of_why_and_is_not_stored(tmp_path, wh) -> None:
    settings = Settings(data_dir=tmp_path, dashboards_host="127.0.0.1")
    insert_events(wh, _readers(True))
    faulty = FailingBoundedReads(wh)
    api = TestClient(create_app(settings, faulty))  # type: ignore[arg-type]
    (auth,) = _researchers(settings, 1, "fail")
    first = _ask(api, auth, 400, epsilon="0.5")
    assert "could not be answered" in first["error"] and "epsilon=0.5 was charged" in first["error"]
    assert "rows" not in first["error"] and "158" not in first["error"]  # no reason given
    assert _spent(wh, "fail0") == pytest.approx(0.5)
    # asked again it is run again and paid again: a failure is no stored answer to repeat
    _ask(api, auth, 400, epsilon="0.5")
    assert _spent(wh, "fail0") == pytest.approx(1.0)
    budget = api.get("/api/research/budget", headers=auth).json()
    assert budget["spent_epsilon"] == pytest.approx(1.0)
    faulty.failing = False
    answered = _ask(api, auth, epsilon="0.5")
    assert answered["rows"] and answered["cost"]["epsilon"] == pytest.approx(0.5)
    assert _spent(wh, "fail0") == pytest.approx(1.5)
    assert _ask(api, auth, epsilon="0.5")["cost"]["epsilon"] == 0.0  # now stored: free


def test_each_day_of_data_is_paid_for_once_whatever_the_month(tmp_path, wh) -> None:
    clock = FakeClock(DAY + timedelta(hours=20))
    settings = Settings(data_dir=tmp_path, dashboards_host="127.0.0.1")
    insert_events(wh, _readers(True))
    api = TestClient(create_app(settings, wh, clock=clock))
    (auth,) = _researchers(settings, 1, "month")
    # the attack: the whole monthly budget on the day, then again every month after
    _ask(api, auth, epsilon="2.5", metrics="visitors")
    _ask(api, auth, epsilon="2.5", metrics="visitors", filters=[PAGE, "country:AZ"])
    assert "left this month" in _ask(api, auth, 400, epsilon="0.1")["error"]
    for months in range(1, 13):
        clock.advance(days=31)
        refused = _ask(api, auth, 400, epsilon="2.4", metrics="visitors")
        assert "privacy budget spent on these days of data" in refused["error"], refused
        assert re.search(r"on \d{4}-\d\d-\d\d it would make epsilon=7\.4;", refused["error"])
        assert "at most epsilon=5 " in refused["error"]
        keep = load_schedule().purposes["product"]["keep"]  # "13 MONTH": what the error says
        assert f"visitors are kept {keep.lower()}s)" in refused["error"]
        # the new month's days have their budget: a question about them is answered
        today = str(clock.now().date())
        fresh = _ask(api, auth, epsilon="0.5", metrics="visitors", **{"from": today, "to": today})
        assert fresh["cost"]["epsilon"] == 0.5, months
    # what the day's visitors have cost this researcher in all: the budget, not 13 times it
    spent_on_day = wh.query(
        "SELECT sum(epsilon) FROM research_ledger WHERE researcher = 'month0' AND repeat = 0 "
        "AND JSONExtractString(question, 'from') <= {d:String} "
        "AND JSONExtractString(question, 'to') >= {d:String}",
        parameters={"d": TODAY},
    ).result_rows[0][0]
    assert spent_on_day == pytest.approx(5.0)
    # and the researcher sees it before asking: GET research/budget lists each day of data
    shown = api.get("/api/research/budget", headers=auth).json()
    by_day = {d["day"]: d for d in shown["data_days"]}
    assert list(by_day) == sorted(by_day)
    assert by_day[TODAY]["spent_epsilon"] == pytest.approx(5.0)
    assert by_day[TODAY]["left_epsilon"] == pytest.approx(0.0)
    last_fresh = by_day[str(clock.now().date())]
    assert last_fresh["spent_epsilon"] == pytest.approx(0.5)
    assert last_fresh["left_epsilon"] == pytest.approx(4.5)
    assert str((clock.now() + timedelta(days=5)).date()) not in by_day  # never read: not listed


def test_a_path_holding_the_old_separator_keeps_its_labels(tmp_path, wh) -> None:
    settings = Settings(data_dir=tmp_path, dashboards_host="127.0.0.1")
    rows = []
    for i in range(60):
        at = DAY + timedelta(hours=6, minutes=i % 50)
        rows.append(
            {
                "site_id": "s",
                "visitor_id": f"x{i}",
                "session_id": f"x{i}-1",
                "path": "/x\x1fgoogle",
                "country": "AZ",
                "event_id": uuid.uuid4(),
                "event_type": "pageview",
                "ts": at,
            }
        )
    insert_events(wh, rows)
    api = TestClient(create_app(settings, wh))
    (auth,) = _researchers(settings, 1, "sep")
    answer = _ask(api, auth, epsilon="5", metrics="visitors", dimensions="path,country", filters=[])
    (row,) = answer["rows"]
    assert row["path"] == "/x\x1fgoogle" and row["country"] == "AZ"
