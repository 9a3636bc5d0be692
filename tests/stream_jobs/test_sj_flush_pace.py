"""The sink's pace (``stream_jobs.flush_pace``): an insert every tick while rows trickle in,
every ``busy_s`` while they pour, back at once when they trickle again."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest

from mayak.settings import Settings
from stream_jobs.flush_pace import FlushPace
from stream_jobs.sink import Lander, LandingBuffer


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _run(pace: FlushPace, ticks: Ticks, rate: float, seconds: float, tick: float = 0.5):
    """Drive the timer for ``seconds`` at ``rate`` rows per second; the times it inserted."""
    inserted, waiting = [], 0.0
    for _ in range(round(seconds / tick)):
        ticks.now += tick
        waiting += rate * tick
        if waiting and pace.due():
            pace.landed(round(waiting))
            inserted.append(ticks.now)
            waiting = 0.0
    return inserted


def test_a_trickle_lands_every_tick_a_flood_every_busy_wait_and_back_at_once() -> None:
    ticks = Ticks()
    pace = FlushPace(quiet_s=0.5, busy_s=2.0, busy_rate=1500, monotonic=ticks)
    quiet = _run(pace, ticks, rate=1000, seconds=10)
    assert len(quiet) == 20 and not pace.busy  # 1,000 rows/s: the freshness load, every tick
    flood = _run(pace, ticks, rate=4000, seconds=10)
    gaps = {round(b - a, 3) for a, b in itertools.pairwise(flood[1:])}
    assert gaps == {2.0} and pace.busy  # from the second insert on, one every 2 s
    calm = _run(pace, ticks, rate=200, seconds=6)
    # the insert that was due 2 s after the flood's last one finds a trickle: every tick again
    assert calm[-4:] == [calm[-1] - 1.5, calm[-1] - 1.0, calm[-1] - 0.5, calm[-1]]
    assert not pace.busy


def test_a_flush_right_after_another_changes_no_pace() -> None:
    ticks = Ticks()
    pace = FlushPace(quiet_s=0.5, busy_s=2.0, busy_rate=1500, monotonic=ticks)
    ticks.now += 0.5
    pace.landed(500)  # the timer, 1,000 rows/s
    ticks.now += 0.01
    pace.landed(100)  # a commit 10 ms later: not 10,000 rows/s
    assert not pace.busy and pace.due() is False
    ticks.now += 0.5
    pace.landed(2000)  # 4,000 rows/s: busy
    ticks.now += 0.1
    pace.landed(10)  # a commit right after a full buffer: still busy
    assert pace.busy
    ticks.now += 1.0
    assert not pace.due()  # the wait runs from the last insert
    ticks.now += 1.0
    assert pace.due()


def test_each_change_of_pace_is_logged_with_the_rate(caplog: pytest.LogCaptureFixture) -> None:
    ticks = Ticks()
    pace = FlushPace(quiet_s=0.5, busy_s=2.0, busy_rate=1500, monotonic=ticks)
    with caplog.at_level(logging.INFO, logger="mayak.sink"):
        _run(pace, ticks, rate=1000, seconds=2)  # quiet, as it started: nothing to say
        _run(pace, ticks, rate=4000, seconds=4)
        _run(pace, ticks, rate=200, seconds=4)
    busy, quiet = (r.getMessage() for r in caplog.records)  # exactly two changes
    assert busy == "4000 rows/s: the next inserts every 2.0 s"
    # the rate the calm was judged by: rows of the first calm tick over the wait since the
    # flood's last insert (this harness forgets the flood's rows left waiting at its end)
    rate, rest = quiet.split(" ", 1)
    assert int(rate) < 1500 and rest == "rows/s: the next inserts every 0.5 s", quiet


def test_busy_wait_below_the_quiet_one_is_refused_with_both_names() -> None:
    with pytest.raises(ValueError, match=r"sink_busy_flush_seconds .* sink_flush_seconds"):
        Settings(sink_flush_seconds=3.0, sink_busy_flush_seconds=2.0)
    with pytest.raises(ValueError, match="busy_s"):
        FlushPace(quiet_s=1.0, busy_s=0.5, busy_rate=1, monotonic=Ticks())


def test_the_buffer_is_due_only_with_rows_waiting_and_the_pace_agreeing() -> None:
    ticks = Ticks()
    landed: list[int] = []

    class Counting(Lander):
        def land(self, records):  # no warehouse: count what would be inserted
            landed.append(len(records))
            return len(records)

    pace = FlushPace(quiet_s=0.5, busy_s=2.0, busy_rate=1500, monotonic=ticks)
    buffer = LandingBuffer(Counting(None, "events", dict), list, most=5000, pace=pace)
    assert not buffer.due()  # nothing waits
    buffer.add(0, 0, b"{}", rows=1000)
    ticks.now += 0.5
    assert buffer.due()
    asyncio.run(buffer.flush())  # 1,000 rows in 0.5 s: 2,000/s, busy
    buffer.add(0, 1, b"{}", rows=1000)
    ticks.now += 0.5
    assert not buffer.due() and pace.busy
    ticks.now += 1.5
    assert buffer.due()
    assert landed == [1]  # one record (of 1,000 rows) was landed; the second still waits
