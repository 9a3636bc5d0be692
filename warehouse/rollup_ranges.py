"""Splits a range of whole UTC days into the rollup rows that cover it exactly.

The one-dimension rollup has a daily table (``agg_dim_daily``) and a weekly one
(``agg_dim_weekly``, migration 0018: Monday-Sunday UTC weeks keyed by their Monday). A range
reads each whole week inside it from the weekly table and only the days before the first
and after the last whole week from the daily table, so every day is read exactly once.
Pure: no ClickHouse, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

_WEEK = timedelta(days=7)


@dataclass(frozen=True)
class DaySplit:
    """[day_from, day_to) as whole weeks [week_from, week_to) (Mondays; empty when equal)
    plus the days [day_from, week_from) and [week_to, day_to) around them."""

    day_from: date
    day_to: date
    week_from: date
    week_to: date

    @property
    def has_weeks(self) -> bool:
        return self.week_from < self.week_to

    def weeks(self) -> list[date]:
        """The Mondays of the whole weeks."""
        count = (self.week_to - self.week_from).days // 7
        return [self.week_from + i * _WEEK for i in range(count)]

    def days(self) -> list[date]:
        """The days read one by one (outside the whole weeks)."""
        lead = (self.week_from - self.day_from).days
        tail = (self.day_to - self.week_to).days
        return [self.day_from + timedelta(days=i) for i in range(lead)] + [
            self.week_to + timedelta(days=i) for i in range(tail)
        ]


def monday(day: date) -> date:
    """The Monday of ``day``'s week (ClickHouse ``toMonday``)."""
    return day - timedelta(days=day.weekday())


def split_days(day_from: date, day_to: date) -> DaySplit:
    """The whole weeks and the remaining days of [day_from, day_to) (``day_to`` exclusive).

    Without a whole week inside, every day is a day: week_from == week_to == day_to."""
    if day_to < day_from:
        raise ValueError(f"the range ends before it starts: {day_from}..{day_to}")
    first = monday(day_from + timedelta(days=6))  # the first Monday on or after day_from
    last = monday(day_to)  # the last Monday on or before day_to: its week ends by day_to
    if first >= last:
        return DaySplit(day_from, day_to, day_to, day_to)
    return DaySplit(day_from, day_to, first, last)
