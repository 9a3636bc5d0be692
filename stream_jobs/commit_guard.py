"""Re-reads what Faust lost, so that a partition's committed offset never stops for good.

Faust commits a partition up to the first offset not acked. In the SIGKILL exactly-once test
(tests/stream_jobs/test_sj_exactly_once.py) a partition now and then had offsets just past the
committed one that never reached the agent at all: every later offset was read, handled and
acked, but the commit could not pass the hole, and the worker went on with its lag frozen.
(Faust itself committed past a hole of exactly one offset, losing it: see below.) The guard
looks for a hole that stays put between two checks and seeks the partition
back to the committed offset: the lost events are read and handled; the events after them,
acked already, are recognised by ``acked()`` and skipped by the agents, and the exactly-once
sink drops anything landed twice.

A second stall came from Faust's own bookkeeping: it adds the offsets of a "gap" (a jump in the
offsets it was handed, as after a seek) to the acked list without checking that they were acked
already, so the list held duplicates; its commit then takes the first run of consecutive
offsets, which a duplicate cuts to one or two, and the committed offset crawled on one offset
per commit (2.8 s) with thousands acked behind it: the exactly-once test's drain timed out
about one run in five. Each check therefore ``tidy``s the acked lists: sorted, without
duplicates, without offsets below the committed one.

A third hole let events be lost, silently (issue 16: the 20-SIGKILL test lost 1 of 20,000
events now and then, no error anywhere): Faust commits past offsets that were never handled.
It counts the offsets of a "gap" (messages its fetch loop skipped, as it does with messages
of an old fetch still delivered after a seek) as acked, although no agent saw them; it
commits past a hole of exactly one offset at the committed position (its check
``min(acked) - committed > 1`` treats the committed offset as the last one read, but it is the
next one to read); and a partition the group never committed is committed from whatever
acked run comes first. After a rewind these combined: the first message of the old fetch
turned every offset of the hole but the first into a "gap", and Faust committed past the
whole hole. ``install`` therefore hooks the consumer: offsets of our topics that were skipped
stay unhandled, and a partition is committed only while the next offset to commit was really
handled (acked by an agent); otherwise it is a hole that ``check`` reads again, however small.
"The next offset" is Faust's committed offset; Faust has None both for a partition the group
never committed and, after each assignment, until its own seek has read the group's offsets
(it hands out, acks and commits messages before that): then it is where ``learn_starts``
found the partition resumes (the group's committed offset, else the first offset).

The invariant (keep it wherever commits are decided): **a committed offset never passes an
offset of ``mayak.raw`` / ``mayak.events`` / ``mayak.failed`` whose message an agent did
not handle**: the commit covers only the run of handled offsets that starts exactly at the
committed offset (at the partition's first offset when the group never committed it).

This reads Faust's consumer bookkeeping (``_committed_offset``, ``_acked``,
``_acked_index``) and replaces two of its consumer's methods (``_new_offset``, ``_add_gap``),
all through ``faust_adapter.ConsumerOffsets``, the only module touching Faust's private names
(faust-streaming is pinned in pyproject.toml; tests/stream_jobs/test_sj_faust_adapter.py pins
those names against the installed Faust). The ``CommitCoordinator`` (``stream_jobs.commit``)
owns the guard: the agents install it through the coordinator when they start and ask it
whether a message was handled before, and a timer runs ``check``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from stream_jobs.faust_adapter import ConsumerOffsets

if TYPE_CHECKING:
    from faust.types import TP

log = logging.getLogger("mayak.stream_jobs")


class CommitGuard:
    """Keeps Faust from committing past an offset no agent handled, re-reads such holes once
    they stay put, and keeps Faust's acked lists sorted and free of duplicates."""

    def __init__(self, app: Any, topics: Iterable[str]) -> None:
        self.offsets = ConsumerOffsets(app)  # the app's consumer is created on first use
        self.topics = set(topics)
        self.suspects: dict = {}  # tp -> (next to commit, first acked) seen at the last check
        self.starts: dict = {}  # tp -> where it resumes (learn_starts)
        self.learning: asyncio.Task | None = None  # the learn_starts task of the last assignment

    def install(self) -> None:
        """Hook Faust's consumer (once): skipped offsets of our topics are not taken for
        acked, and a partition whose next offset to commit was not handled is not committed."""
        self.offsets.override(self, self._new_offset, self._add_gap)

    def _new_offset(self, tp: TP, faust_new_offset: Callable[[TP], int | None]) -> int | None:
        if tp.topic in self.topics and self.offsets.acked_of(tp) and not self._head_acked(tp):
            return None  # a hole at the head, even of one offset: check() reads it again
        return faust_new_offset(tp)

    async def _add_gap(
        self,
        tp: TP,
        offset_from: int,
        offset_to: int,
        faust_add_gap: Callable[[TP, int, int], Awaitable[None]],
    ) -> None:
        if tp.topic not in self.topics:  # a compacted changelog: its gaps are real
            await faust_add_gap(tp, offset_from, offset_to)
        elif offset_to > offset_from:  # at every start, after Faust's seek: benign
            log.info(
                "Faust's fetch loop jumped over offsets %d..%d of %s; they count as "
                "handled only if an agent acked them",
                offset_from,
                offset_to - 1,
                tp,
            )

    def forget(self, tps: Iterable[TP]) -> None:
        """Partitions revoked: what was learned of them may be stale by the next assignment."""
        for tp in tps:
            self.starts.pop(tp, None)
            self.suspects.pop(tp, None)

    async def learn_starts(self, tps: Iterable[TP]) -> None:
        """Where each of our partitions in ``tps`` resumes: the group's committed offset asked
        of the broker, or the partition's first offset when the group never committed it.
        Run as a task on each assignment, and by ``check`` for partitions still unknown.
        Faust's committed offset is None both for a partition never committed and, after an
        assignment, until its own seek has read the group's offsets (it hands out, acks and
        commits messages before that); until this look-up answered, such a partition is not
        committed."""
        ours = [tp for tp in tps if tp.topic in self.topics]
        if not ours:
            return
        try:
            committed = await self.offsets.group_committed(ours)
            fresh = [tp for tp in ours if not committed.get(tp)]  # Faust keeps 0 as None
            earliest = await self.offsets.earliest(fresh) if fresh else {}
        except Exception as exc:  # check() looks them up again
            log.warning("could not look up where %d partition(s) resume: %r", len(ours), exc)
            return
        for tp in ours:
            self.starts[tp] = committed.get(tp) or earliest[tp]

    def acked(self, message: Any) -> bool:
        """Whether ``message`` was acked already (it is being read a second time)."""
        return self.offsets.is_acked(message.tp, message.offset)

    def _next(self, tp: TP) -> int | None:
        """The next offset of ``tp`` to commit: the committed one (while Faust has None:
        where ``learn_starts`` found it resumes; None until it answered)."""
        committed = self.offsets.committed(tp)
        if committed is None:  # never committed (or at 0), or before Faust's seek
            return self.starts.get(tp)
        return committed

    def _head_acked(self, tp: TP) -> bool:
        following = self._next(tp)
        return following is not None and self.offsets.is_acked(tp, following)

    def holes(self) -> dict:
        """tp -> (next offset to commit, first acked offset after it) of every partition
        with a hole (an offset not handled below acked ones)."""
        found = {}
        for tp, acked in self.offsets.acked():
            following = self._next(tp)
            if (
                tp.topic in self.topics
                and acked
                and following is not None
                and not self._head_acked(tp)
            ):
                after = [o for o in acked if o > following]
                if after:
                    found[tp] = (following, min(after))
        return found

    async def check(self) -> int:
        """Tidy the acked lists, then rewind each partition whose hole did not move since the
        last check; returns how many were rewound. Called from a timer."""
        self.install()
        offsets = self.offsets
        unknown = [
            tp
            for tp, acked in offsets.acked()
            if tp.topic in self.topics
            and acked
            and tp not in self.starts
            and offsets.committed(tp) is None
        ]
        if unknown:  # never committed: commits wait until the first offset is known
            await self.learn_starts(unknown)
        self.tidy()
        holes = self.holes()
        rewound = []
        for tp, (following, first) in holes.items():
            if self.suspects.get(tp) == (following, first):
                log.warning(
                    "offsets %d..%d of %s were never handled; reading them again",
                    following,
                    first - 1,
                    tp,
                )
                await offsets.seek(tp, following)
                rewound.append(tp)
        self.suspects = {tp: hole for tp, hole in holes.items() if tp not in rewound}
        return len(rewound)

    def tidy(self) -> int:
        """Sort Faust's acked lists and drop duplicates and offsets below the committed one
        (see the module docstring); returns how many entries were dropped."""
        offsets = self.offsets
        dropped = 0
        for tp, acked in offsets.acked():
            if tp.topic not in self.topics or not acked:
                continue
            committed = offsets.committed(tp)
            keep = sorted({o for o in acked if committed is None or o >= committed})
            if keep != acked:
                dropped += len(acked) - len(keep)
                acked[:] = keep
        if dropped:
            log.warning(
                "dropped %d duplicate or committed offset(s) from Faust's acked lists", dropped
            )
        return dropped
