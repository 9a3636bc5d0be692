"""The commit guard: a hole below the acked offsets that stays put is read again.

The names it reads in Faust are pinned in test_sj_faust_adapter.py."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace

import faust
from faust.types import TP

from stream_jobs.commit_guard import CommitGuard


class _Consumer:
    def __init__(self) -> None:
        self._acked = defaultdict(list)
        self._acked_index = defaultdict(set)
        self._committed_offset = defaultdict(lambda: None)
        self.seeks: list[tuple] = []

    def ack(self, tp, *offsets) -> None:
        self._acked[tp] += offsets
        self._acked_index[tp].update(offsets)

    async def seek(self, tp, offset) -> None:
        self.seeks.append((tp, offset))


def _guard():
    consumer = _Consumer()
    return consumer, CommitGuard(SimpleNamespace(consumer=consumer), ["raw"])


def test_a_hole_that_stays_is_read_again_once() -> None:
    consumer, guard = _guard()
    raw, other = TP("raw", 0), TP("other", 0)
    consumer._committed_offset[raw] = 100
    consumer.ack(raw, *range(103, 120))  # 100..102 never came
    consumer._committed_offset[other] = 0
    consumer.ack(other, 5)  # not a guarded topic
    assert asyncio.run(guard.check()) == 0  # first sight: maybe still on its way
    assert asyncio.run(guard.check()) == 1
    assert consumer.seeks == [(raw, 100)]
    assert asyncio.run(guard.check()) == 0  # a fresh look after a rewind
    assert guard.acked(SimpleNamespace(tp=raw, offset=110))
    assert not guard.acked(SimpleNamespace(tp=raw, offset=101))


def test_no_rewind_while_the_hole_moves_or_is_one_offset() -> None:
    consumer, guard = _guard()
    raw = TP("raw", 1)
    consumer._committed_offset[raw] = 10
    consumer.ack(raw, 15)
    asyncio.run(guard.check())
    consumer._committed_offset[raw] = 13  # the commit moved on meanwhile
    assert asyncio.run(guard.check()) == 0
    consumer._committed_offset[raw] = 14  # Faust commits past a one-offset hole itself
    assert asyncio.run(guard.check()) == 0 and asyncio.run(guard.check()) == 0
    assert consumer.seeks == []


def test_duplicate_acks_that_made_faust_crawl_are_tidied() -> None:
    app = faust.App("guard-tidy", broker="kafka://127.0.0.1:1")  # never connects
    consumer = app.consumer
    raw = TP("raw", 1)
    guard = CommitGuard(app, ["raw"])

    def crawl_state() -> None:  # as logged by the stalled test: a gap re-added acked offsets
        consumer._committed_offset[raw] = 2004
        consumer._acked[raw] = [2003, 2004, 2004, *range(2005, 5092), 2006]
        consumer._acked_index[raw] = set(range(2003, 5092))

    crawl_state()
    assert consumer._new_offset(raw) == 2005  # Faust alone: one offset per commit
    crawl_state()
    assert guard.tidy() == 3  # 2003 (committed), the second 2004 and 2006
    assert consumer._acked[raw] == list(range(2004, 5092))
    assert consumer._new_offset(raw) == 5092  # everything acked is committed at once
