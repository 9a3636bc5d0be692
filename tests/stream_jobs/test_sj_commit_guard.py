"""The commit guard: a hole below the acked offsets that stays put is read again."""

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
        self._paused_partitions: set = set()
        self.highwaters: dict = {}
        self.seeks: list[tuple] = []

    def highwater(self, tp):
        return self.highwaters.get(tp)

    def resume_partitions(self, tps) -> None:
        self._paused_partitions -= set(tps)

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


def test_faust_still_keeps_the_bookkeeping_the_guard_reads() -> None:
    app = faust.App("guard-names", broker="kafka://127.0.0.1:1")  # never connects
    consumer = app.consumer
    for name in ("_acked", "_acked_index", "_committed_offset", "_paused_partitions"):
        assert hasattr(consumer, name), name
    assert callable(consumer.seek) and callable(consumer.highwater)
    assert callable(consumer.resume_partitions) and hasattr(app, "in_recovery")


def test_a_backlog_nobody_reads_is_resumed_and_read_again() -> None:
    consumer, guard = _guard()
    stuck, busy, done = TP("raw", 0), TP("raw", 1), TP("raw", 2)
    consumer._committed_offset.update({stuck: 7377, busy: 100, done: 50})
    consumer.highwaters.update({stuck: 10_462, busy: 900, done: 51})  # done: nothing left
    consumer._paused_partitions.add(stuck)  # left paused after a rebalance
    for _ in range(CommitGuard.STALL_CHECKS - 1):
        assert asyncio.run(guard.check()) == 0
        consumer._committed_offset[busy] += 10  # being read: the commit moves
    assert asyncio.run(guard.check()) == 1
    assert consumer.seeks == [(stuck, 7377)] and stuck not in consumer._paused_partitions
    assert asyncio.run(guard.check()) == 0  # a fresh count after a rewind


def test_no_backlog_rewind_during_recovery_or_while_acks_are_pending() -> None:
    consumer, guard = _guard()
    raw = TP("raw", 0)
    consumer._committed_offset[raw] = 10
    consumer.highwaters[raw] = 500
    guard.app.in_recovery = True  # the partition waits for the session table
    for _ in range(CommitGuard.STALL_CHECKS + 1):
        assert asyncio.run(guard.check()) == 0
    guard.app.in_recovery = False
    consumer.ack(raw, 11)  # handled, not yet committed: the hole check's business
    for _ in range(CommitGuard.STALL_CHECKS + 1):
        assert asyncio.run(guard.check()) == 0
    assert consumer.seeks == []
