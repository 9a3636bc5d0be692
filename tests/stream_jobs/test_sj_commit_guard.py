"""The commit guard: a hole below the acked offsets that stays put is read again, and Faust
never commits past an offset no agent handled (issue 16: one event in 20,000 lost).

The names of Faust it uses (through ``stream_jobs.faust_adapter``) are pinned in
test_sj_faust_adapter.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import faust
from faust.types import TP

from stream_jobs.commit_guard import CommitGuard


def _guard(topics=("raw",)):
    """A guard on a real (never connected) Faust consumer; seeks and log starts are faked."""
    app = faust.App(f"guard-{id(topics)}", broker="kafka://127.0.0.1:1")  # never connects
    consumer = app.consumer
    consumer.seeks = []
    consumer.starts = {}

    async def seek(tp, offset) -> None:
        consumer.seeks.append((tp, offset))

    async def earliest_offsets(*tps):
        return {tp: consumer.starts.get(tp, 0) for tp in tps}

    consumer.seek, consumer.earliest_offsets = seek, earliest_offsets
    consumer.group = {}  # the group's committed offsets on the broker (None: never)

    guard = CommitGuard(app, list(topics))

    async def group_committed(tps):
        return {tp: consumer.group.get(tp) for tp in tps}

    guard.offsets.group_committed = group_committed  # the broker, as the adapter asks it
    guard.install()
    return consumer, guard


def _ack(consumer, tp, *offsets) -> None:
    """As ``Consumer.ack`` does for each handled message."""
    consumer._acked[tp] += offsets
    consumer._acked_index[tp].update(offsets)


def _commit_offsets(consumer, tp) -> dict:
    """What Faust's next commit would write for ``tp``."""
    return consumer._filter_committable_offsets([tp])


def test_a_hole_that_stays_is_read_again_once() -> None:
    consumer, guard = _guard()
    raw, other = TP("raw", 0), TP("other", 0)
    consumer._committed_offset[raw] = 100
    _ack(consumer, raw, *range(103, 120))  # 100..102 never came
    consumer._committed_offset[other] = 3
    _ack(consumer, other, 5)  # not a guarded topic
    assert asyncio.run(guard.check()) == 0  # first sight: maybe still on its way
    assert asyncio.run(guard.check()) == 1
    assert consumer.seeks == [(raw, 100)]
    assert asyncio.run(guard.check()) == 0  # a fresh look after a rewind
    assert guard.acked(SimpleNamespace(tp=raw, offset=110))
    assert not guard.acked(SimpleNamespace(tp=raw, offset=101))
    assert _commit_offsets(consumer, raw) == {}


def test_no_rewind_while_the_hole_moves() -> None:
    consumer, guard = _guard()
    raw = TP("raw", 1)
    consumer._committed_offset[raw] = 10
    _ack(consumer, raw, 15)
    asyncio.run(guard.check())
    consumer._committed_offset[raw] = 13  # the commit moved on meanwhile
    assert asyncio.run(guard.check()) == 0
    assert consumer.seeks == []


def test_a_hole_of_one_offset_is_not_committed_past_but_read_again() -> None:
    consumer, guard = _guard()
    raw = TP("raw", 2)
    consumer._committed_offset[raw] = 14  # the next offset to read is 14: it never came
    _ack(consumer, raw, *range(15, 21))
    assert _commit_offsets(consumer, raw) == {}  # Faust alone commits 21: 14 lost
    assert asyncio.run(guard.check()) == 0 and asyncio.run(guard.check()) == 1
    assert consumer.seeks == [(raw, 14)]
    _ack(consumer, raw, 14)  # read again and handled
    assert _commit_offsets(consumer, raw) == {raw: 21}


def test_offsets_skipped_after_a_rewind_are_not_taken_for_acked() -> None:
    """The loss of issue 16, step by step through Faust's own bookkeeping: a rewind to 100,
    then a message of the fetch from before the seek (offset 120) reaches the agent; Faust's
    fetch loop calls 101..119 a gap, the refetched 100..119 are dropped as already read, and
    Faust alone commits past 100 (to 104: its duplicate acks cut the run): offsets 100..102,
    never handled, are lost."""
    consumer, guard = _guard()
    raw = TP("raw", 3)
    consumer._committed_offset[raw] = 100
    _ack(consumer, raw, *range(103, 120))
    asyncio.run(guard.check())
    assert asyncio.run(guard.check()) == 1  # seek(raw, 100): the fetch loop's read offset 100
    asyncio.run(consumer._add_gap(raw, 101, 120))  # as _drain_messages does for offset 120
    _ack(consumer, raw, 120)
    assert _commit_offsets(consumer, raw) == {}
    _ack(consumer, raw, 100, 101, 102)  # the next rewind reads them
    assert _commit_offsets(consumer, raw) == {raw: 121}


def test_a_partition_never_committed_is_committed_from_its_first_offset_only() -> None:
    consumer, guard = _guard()
    raw, late = TP("raw", 4), TP("raw", 5)
    consumer.starts = {late: 40}  # its first segments expired
    _ack(consumer, raw, *range(3, 10))  # 0..2 never came
    _ack(consumer, late, *range(40, 45))
    assert _commit_offsets(consumer, raw) == {}  # Faust alone commits 10: 0..2 lost
    assert _commit_offsets(consumer, late) == {}  # not known yet where it starts
    assert asyncio.run(guard.check()) == 0
    assert _commit_offsets(consumer, late) == {late: 45}
    assert asyncio.run(guard.check()) == 1 and consumer.seeks == [(raw, 0)]
    _ack(consumer, raw, 0, 1, 2)
    assert _commit_offsets(consumer, raw) == {raw: 10}


def test_other_topics_keep_faust_s_own_rules() -> None:
    consumer, _ = _guard()
    other = TP("other", 0)
    consumer._committed_offset[other] = 14
    _ack(consumer, other, *range(15, 21))
    assert _commit_offsets(consumer, other) == {other: 21}
    consumer._committed_offset[other] = 21  # as the commit itself sets it
    asyncio.run(consumer._add_gap(other, 21, 30))  # e.g. a compacted topic: a real gap
    _ack(consumer, other, 30)
    assert _commit_offsets(consumer, other) == {other: 31}


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
    guard.install()
    assert consumer._new_offset(raw) == 5092  # everything acked is committed at once


def test_before_faust_s_seek_partitions_resume_where_the_broker_says() -> None:
    """Faust hands out (and acks) messages after an assignment before its own seek sets the
    committed offsets (None until then, and None for a partition never committed): each
    partition resumes where the group committed it, or at its first offset."""
    consumer, guard = _guard()
    raw, fresh, late = TP("raw", 8), TP("raw", 9), TP("raw", 10)
    consumer.group = {raw: 1922, fresh: None, late: None}
    consumer.starts = {late: 40}  # its first segments expired
    _ack(consumer, raw, *range(1922, 1936))
    _ack(consumer, fresh, *range(0, 5))
    _ack(consumer, late, *range(40, 45))
    for tp in (raw, fresh, late):  # not known yet: no commit, no loss
        assert _commit_offsets(consumer, tp) == {}
    assert guard.holes() == {}  # nothing to read again meanwhile
    asyncio.run(guard.learn_starts({raw, fresh, late, TP("other", 0)}))  # on assignment
    assert guard.starts == {raw: 1922, fresh: 0, late: 40}
    assert _commit_offsets(consumer, raw) == {raw: 1936}
    assert _commit_offsets(consumer, fresh) == {fresh: 5}
    assert _commit_offsets(consumer, late) == {late: 45}
    guard.forget({raw, fresh, late})  # revoked: looked up again at the next assignment
    assert guard.starts == {}


def test_check_learns_the_start_of_a_partition_still_unknown() -> None:
    consumer, guard = _guard()
    raw, fresh = TP("raw", 11), TP("raw", 12)
    consumer.group = {raw: 7}
    _ack(consumer, raw, 7, 8)
    _ack(consumer, fresh, 0, 1)
    asyncio.run(guard.check())  # the look-up on assignment failed, say
    assert guard.starts == {raw: 7, fresh: 0}
    assert _commit_offsets(consumer, fresh) == {fresh: 2}
    assert _commit_offsets(consumer, raw) == {raw: 9}
