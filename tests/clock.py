"""``FakeClock``: the test double of ``mayak.clock.Clock``.

Its wall time and monotonic time stand still until a test sets or advances them; its sleeps
advance both at once and return without waiting, and are recorded in ``slept``.
``clear_of_midnight_utc``: for tests on the real clock that must not straddle a UTC day.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

#: Where a ``FakeClock`` starts unless told otherwise (a Saturday noon, UTC).
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class FakeClock:
    """A settable, advanceable clock; ``sleep`` and ``sleep_blocking`` advance it instantly."""

    def __init__(self, now: datetime = NOW, monotonic: float = 1_000.0) -> None:
        self._now = _utc(now)
        self._monotonic = monotonic
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def set(self, now: datetime) -> None:
        """Set the wall time only (as a wall clock that is corrected); monotonic time stays."""
        self._now = _utc(now)

    def advance(self, seconds: float = 0.0, **delta: float) -> None:
        """Let time pass: ``seconds`` plus any ``timedelta`` keywords (``days=1``), on both the
        wall and the monotonic clock."""
        step = timedelta(seconds=seconds, **delta)
        if step < timedelta(0):
            raise ValueError("time does not go back; use set() to move the wall clock")
        self._now += step
        self._monotonic += step.total_seconds()

    async def sleep(self, seconds: float) -> None:
        self.sleep_blocking(seconds)

    def sleep_blocking(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(max(0.0, seconds))


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("a FakeClock's time must be timezone-aware")
    return moment.astimezone(UTC)


def clear_of_midnight_utc(
    seconds: float,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], object] = time.sleep,
) -> float:
    """Wait, if need be, until the next ``seconds`` hold no midnight UTC, and return the wait.

    For a test against the real clock whose expectations hold within one UTC day: a daily salt
    (one visitor is two across midnight), a budget month or week (they start at midnight UTC).
    The wait is at most ``seconds`` and happens only in runs that start that close to midnight.
    """
    moment = now().astimezone(UTC)
    midnight = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    wait = (midnight - moment).total_seconds() + 1.0
    if wait > seconds + 1.0:
        return 0.0
    sleep(wait)
    return wait
