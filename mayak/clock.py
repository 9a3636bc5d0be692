"""The one clock of Mayak: wall time, monotonic time and sleeping, injected wherever time is read.

Code that reads the time takes a ``Clock`` (keyword ``clock``, default ``SYSTEM_CLOCK``), so a
test can set, advance and freeze it (``tests/clock.py``'s ``FakeClock``). This module is the
bottom layer: it imports nothing else from Mayak.

``sleep`` is a coroutine for code on an event loop; ``sleep_blocking`` is for code that runs in a
thread of its own and cannot await (the sink's lander inserts from ``asyncio.to_thread``, and
retries a failed insert there), so both are part of the one clock.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """What reads or waits on time: the wall clock, a monotonic clock and sleeping."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, never going back: for durations and deadlines."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` without blocking the event loop."""
        ...

    def sleep_blocking(self, seconds: float) -> None:
        """Block this thread for ``seconds`` (for code running off the event loop)."""
        ...


class SystemClock:
    """The real clock: the operating system's wall and monotonic clocks."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def sleep_blocking(self, seconds: float) -> None:
        time.sleep(seconds)


#: The clock every production object uses unless it is given another one.
SYSTEM_CLOCK: Clock = SystemClock()


def epoch_ms(clock: Clock) -> int:
    """The clock's current wall time in epoch milliseconds (the unit of events' ``ts``)."""
    return int(clock.now().timestamp() * 1000)
