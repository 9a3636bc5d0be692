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
        self._commit_fut = None
        self.seeks: list[tuple] = []
        self.commits: list[dict] = []
        self.assigned: set = set()

    def assignment(self) -> set:
        return self.assigned

    async def _commit(self, offsets) -> bool:
        self.commits.append(dict(offsets))
        return True

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
    for name in ("_acked", "_acked_index", "_committed_offset", "_commit_fut"):
        assert hasattr(consumer, name), name
    assert callable(consumer.seek) and callable(consumer._commit)
    assert callable(consumer.assignment) and hasattr(app, "in_recovery")


def test_what_faust_booked_as_committed_is_committed_again() -> None:
    consumer, guard = _guard()
    booked, pending, gone, other = TP("raw", 0), TP("raw", 1), TP("raw", 2), TP("other", 0)
    consumer.assigned = {booked, pending, other}  # raw-2 was revoked
    consumer._committed_offset.update({booked: 10_462, pending: 500, gone: 7, other: 3})
    consumer.ack(pending, 501)  # Faust will commit this one itself
    for _ in range(CommitGuard.RECOMMIT_EVERY - 1):
        asyncio.run(guard.check())
    assert consumer.commits == []
    asyncio.run(guard.check())
    assert consumer.commits == [{booked: 10_462}]  # a refused commit is repaired


def test_no_recommit_while_faust_commits_or_recovers() -> None:
    consumer, guard = _guard()
    raw = TP("raw", 0)
    consumer.assigned = {raw}
    consumer._committed_offset[raw] = 5
    consumer._commit_fut = object()  # Faust's own commit in flight
    assert asyncio.run(guard.recommit()) == {}
    consumer._commit_fut = None
    guard.app.in_recovery = True
    assert asyncio.run(guard.recommit()) == {}
    guard.app.in_recovery = False
    assert asyncio.run(guard.recommit()) == {raw: 5} and consumer.commits == [{raw: 5}]
