"""How often a sink inserts: often while rows trickle in, seldom while they pour.

Each ClickHouse insert has a fixed cost besides its rows: a new part in ``events`` and in
every table its materialized views feed, and the merges those parts cause later. On the
embedded engine an insert of 10 rows cost about 90 ms of CPU and one of 2,000 rows 160 ms
(``README``, "CPU per event"). Every ``quiet_s`` (``sink_flush_seconds``, 0.5 s) keeps the
dashboards within about a second of the visit at the loads a small site sees; at thousands
of events a second the same pace spends a fifth of a core on inserts alone. So, as ClickHouse
does for its own asynchronous inserts (``async_insert_use_adaptive_busy_timeout``), the pace
follows the load: once rows arrived at ``busy_rate`` per second or more since the last
insert, the next one waits ``busy_s`` (``sink_busy_flush_seconds``, 2 s); once they arrive
slower, ``quiet_s`` again. Whatever the pace, a buffer holding ``sink_batch_size`` rows lands
at once, and each commit lands what waits first (``stream_jobs.commit``), so a busy pace
delays landing by at most ``busy_s`` and never delays a commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("mayak.sink")


class FlushPace:
    """When the next insert of one buffer is due, from the rate of its last ones."""

    def __init__(
        self,
        quiet_s: float,
        busy_s: float,
        busy_rate: float,
        monotonic: Callable[[], float],
    ) -> None:
        if busy_s < quiet_s:
            raise ValueError(f"busy_s ({busy_s}) must be at least quiet_s ({quiet_s})")
        self.quiet_s, self.busy_s, self.busy_rate = quiet_s, busy_s, busy_rate
        self.monotonic = monotonic
        self.wait_s = quiet_s
        self.last = monotonic()

    def due(self) -> bool:
        """Whether the timer (ticking every ``quiet_s``) should insert now: half a tick early
        counts, so that a tick a little ahead of the wait does not put it off a whole tick."""
        return self.monotonic() - self.last >= self.wait_s - self.quiet_s / 2

    def landed(self, rows: int) -> None:
        """An insert of ``rows`` rows started now: set the wait before the next one."""
        now = self.monotonic()
        elapsed, self.last = now - self.last, now
        if elapsed < self.quiet_s / 2:
            return  # right after another insert (a commit after a full buffer): says little
        rate = rows / elapsed
        wait_s = self.busy_s if rate >= self.busy_rate else self.quiet_s
        if wait_s != self.wait_s:
            log.info("%.0f rows/s: the next inserts every %.1f s", rate, wait_s)
        self.wait_s = wait_s

    @property
    def busy(self) -> bool:
        return self.wait_s > self.quiet_s
