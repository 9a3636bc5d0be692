"""Re-reads what Faust lost, so that a partition's committed offset never stops for good.

Faust commits a partition up to the first offset not acked. In the SIGKILL exactly-once test
(tests/stream_jobs/test_sj_exactly_once.py) a partition now and then had offsets just past the
committed one that never reached the agent at all: every later offset was read, handled and
acked, but the commit could not pass the hole, and the worker went on with its lag frozen.
(Faust itself commits past a hole of exactly one offset, so only holes of two or more stop
it.) The guard looks for a hole that stays put between two checks and seeks the partition
back to the committed offset: the lost events are read and handled; the events after them,
acked already, are recognised by ``acked()`` and skipped by the agents, and the exactly-once
sink drops anything landed twice.

A second stall: a commit that Kafka refuses because the group rebalanced meanwhile ("already
rebalanced") is dropped by Faust without a word, yet Faust books its offsets as committed and
never commits them again. After the exactly-once test's restart the worker had handled every
raw event, but Kafka's committed offset stayed thousands behind. So every ``RECOMMIT_EVERY``
checks the guard commits again, to Kafka, the offsets Faust believes committed, for the
partitions with nothing newer to commit (their output was flushed before Faust booked them).

This reads Faust's consumer bookkeeping (``_committed_offset``, ``_acked``,
``_acked_index``, ``_commit_fut``) and commits through its ``_commit``: faust-streaming is
pinned in pyproject.toml, and tests/stream_jobs/test_sj_commit_guard.py checks those names
against the installed Faust.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

log = logging.getLogger("mayak.stream_jobs")


class CommitGuard:
    #: checks (5 s apart) between two re-commits of what Faust believes committed
    RECOMMIT_EVERY = 6

    def __init__(self, app, topics: Iterable[str]) -> None:
        self.app = app  # its consumer is created on first use
        self.topics = set(topics)
        self.suspects: dict = {}  # tp -> (committed, first acked) seen at the last check
        self.checks = 0

    def acked(self, message) -> bool:
        """Whether ``message`` was acked already (it is being read a second time)."""
        return message.offset in self.app.consumer._acked_index.get(message.tp, ())

    def holes(self) -> dict:
        """tp -> (committed offset, first acked offset) of every partition with a hole."""
        consumer = self.app.consumer
        found = {}
        for tp, acked in list(consumer._acked.items()):
            committed = consumer._committed_offset.get(tp)
            if tp.topic in self.topics and acked and committed is not None:
                first = min(acked)
                if first - committed > 1:
                    found[tp] = (committed, first)
        return found

    async def check(self) -> int:
        """Rewind each partition whose hole did not move since the last check; returns how
        many were rewound. Called from a timer."""
        holes = self.holes()
        rewound = []
        for tp, (committed, first) in holes.items():
            if self.suspects.get(tp) == (committed, first):
                log.warning("offsets %d..%d of %s were never handled; reading them again",
                            committed, first - 1, tp)
                await self.app.consumer.seek(tp, committed)
                rewound.append(tp)
        self.suspects = {tp: hole for tp, hole in holes.items() if tp not in rewound}
        self.checks += 1
        if self.checks % self.RECOMMIT_EVERY == 0:
            await self.recommit()
        return len(rewound)

    async def recommit(self) -> dict:
        """Commit to Kafka again the offsets Faust booked for partitions with nothing newer
        to commit; returns them. Skipped while Faust commits or recovers tables."""
        consumer = self.app.consumer
        if consumer._commit_fut is not None or getattr(self.app, "in_recovery", False):
            return {}
        assigned = consumer.assignment()
        offsets = {tp: offset for tp, offset in list(consumer._committed_offset.items())
                   if tp.topic in self.topics and offset is not None and tp in assigned
                   and not consumer._acked.get(tp)}
        if offsets:
            await consumer._commit(offsets)
        return offsets
