"""The dashboards read every "now" from the injected clock: today's date in the report zone
(default ranges, campaign sends), budget periods and the audit's time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from starlette.datastructures import QueryParams
from starlette.testclient import TestClient

from dashboards import params as qp
from dashboards.app import create_app
from dashboards.auth import add_token, tokens_path
from mayak.settings import REPORT_TIMEZONE, Settings
from tests.clock import FakeClock

#: 20:30 UTC on the last day of January is already 1 February in Baku (UTC+4)
LATE = datetime(2026, 1, 31, 20, 30, tzinfo=UTC)


def test_today_and_the_default_range_follow_the_clock_in_the_report_zone() -> None:
    clock = FakeClock(LATE)
    assert qp.local_today(REPORT_TIMEZONE, clock) == date(2026, 2, 1)
    assert qp.local_today("UTC", clock) == date(2026, 1, 31)
    assert qp.date_range(QueryParams(""), REPORT_TIMEZONE, clock) == (
        date(2026, 2, 1) - timedelta(days=qp.DEFAULT_DAYS - 1),
        date(2026, 2, 1),
    )
    clock.advance(days=40)
    query = qp.query_from(QueryParams("site=s1"), REPORT_TIMEZONE, clock=clock)
    assert query.date_to == date(2026, 3, 13)


@pytest.mark.clickhouse
def test_the_app_takes_its_dates_budget_periods_and_audit_times_from_the_clock(
    tmp_path, wh
) -> None:
    settings = Settings(data_dir=tmp_path, dashboards_host="127.0.0.1")
    clock = FakeClock(LATE)
    api = TestClient(create_app(settings, wh, clock=clock))
    marketing = {"Authorization": "Bearer " + add_token(tokens_path(settings), "mia", "marketing")}
    researcher = {
        "Authorization": "Bearer " + add_token(tokens_path(settings), "rey", "researcher")
    }
    posted = api.post(
        "/api/marketing/campaigns/spring/sends", headers=marketing, json={"site": "s1", "sent": 10}
    )
    assert posted.status_code == 200 and posted.json()["sent_on"] == "2026-02-01"
    budget = api.get("/api/research/budget", headers=researcher).json()
    assert budget["until"] == "2026-02-01T00:00:00+00:00"  # the month of the clock (UTC)
    clock.advance(hours=4)
    assert (
        api.get("/api/research/budget", headers=researcher).json()["until"]
        == "2026-03-01T00:00:00+00:00"
    )
    stamps = wh.query("SELECT ts FROM query_audit ORDER BY ts").result_rows
    assert [str(ts)[:16] for (ts,) in stamps] == [
        "2026-01-31 20:30",
        "2026-01-31 20:30",
        "2026-02-01 00:30",
    ]
