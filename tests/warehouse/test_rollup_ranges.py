"""The split of a day range into whole Monday-Sunday weeks and the days around them
(warehouse/rollup_ranges.py): every day read exactly once, every whole week as a week."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse.rollup_ranges import monday, split_days

DAYS = st.dates(min_value=date(2020, 1, 1), max_value=date(2100, 12, 31))


@given(DAYS, st.integers(min_value=0, max_value=400))
@settings(max_examples=500)
def test_every_day_is_read_once_and_every_whole_week_as_a_week(start: date, length: int) -> None:
    end = start + timedelta(days=length)
    split = split_days(start, end)
    weeks = split.weeks()
    assert all(w.weekday() == 0 and start <= w and w + timedelta(days=7) <= end for w in weeks)
    covered = [w + timedelta(days=i) for w in weeks for i in range(7)] + split.days()
    assert sorted(covered) == [start + timedelta(days=i) for i in range(length)]
    assert len(covered) == len(set(covered))
    # no whole week is left to the daily table: a Monday inside whose week fits is a week
    whole = [
        start + timedelta(days=i)
        for i in range(length)
        if (start + timedelta(days=i)).weekday() == 0 and start + timedelta(days=i + 7) <= end
    ]
    assert weeks == whole
    assert len(split.days()) <= 12 or not weeks


@pytest.mark.parametrize(
    "start, end, weeks, days",
    [
        # 2026-11-03 is a Tuesday: the bench's 30 days ending 2026-12-02
        (date(2026, 11, 3), date(2026, 12, 2), 3, 8),
        (date(2026, 11, 2), date(2026, 11, 9), 1, 0),  # one week, Monday to Monday
        (date(2026, 11, 3), date(2026, 11, 9), 0, 6),  # shorter than a week
        (date(2026, 11, 2), date(2026, 11, 8), 0, 6),  # Monday, but the week is cut
        (date(2026, 11, 5), date(2026, 11, 5), 0, 0),  # empty
        (date(2026, 12, 30), date(2027, 1, 12), 1, 6),  # across a year end
    ],
)
def test_known_ranges(start: date, end: date, weeks: int, days: int) -> None:
    split = split_days(start, end)
    assert (len(split.weeks()), len(split.days())) == (weeks, days)
    assert split.has_weeks == bool(weeks)


def test_monday_and_a_reversed_range() -> None:
    assert monday(date(2026, 12, 6)) == date(2026, 11, 30) == monday(date(2026, 11, 30))
    with pytest.raises(ValueError, match="ends before it starts"):
        split_days(date(2026, 11, 5), date(2026, 11, 4))
