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

A second kind of stall came after a rebalance (the killed worker's session expiring while the
restarted one runs): the table recovery completed, yet the partition delivered nothing more,
with a backlog behind its committed offset and nothing acked (the task dump showed every agent
waiting for messages). The guard treats a partition whose committed offset stays put for
``STALL_CHECKS`` checks while the broker holds more than it, outside recovery, the same way:
it resumes it if Faust left it paused and seeks it back to the committed offset.

This reads Faust's consumer bookkeeping (``_committed_offset``, ``_acked``,
``_acked_index``, ``_paused_partitions``): faust-streaming is pinned in pyproject.toml, and
tests/stream_jobs/test_sj_commit_guard.py checks those names against the installed Faust.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

log = logging.getLogger("mayak.stream_jobs")


class CommitGuard:
    #: checks (5 s apart) a backlogged partition's commit may stand still before a rewind
    STALL_CHECKS = 3

    def __init__(self, app, topics: Iterable[str]) -> None:
        self.app = app  # its consumer is created on first use
        self.topics = set(topics)
        self.suspects: dict = {}  # tp -> (committed, first acked) seen at the last check
        self.idle: dict = {}  # tp -> (committed, checks seen standing still with a backlog)

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

    def backlogged(self) -> dict:
        """tp -> committed offset of every partition with nothing acked and more to read."""
        consumer = self.app.consumer
        found = {}
        for tp, committed in list(consumer._committed_offset.items()):
            if tp.topic not in self.topics or committed is None or consumer._acked.get(tp):
                continue
            highwater = consumer.highwater(tp)
            # +1: Faust's committed offset is at times the last handled one, at times the next
            if highwater is not None and highwater > committed + 1:
                found[tp] = committed
        return found

    async def check(self) -> int:
        """Rewind each partition whose hole did not move since the last check, or whose
        backlog was not touched for ``STALL_CHECKS`` checks; returns how many were rewound.
        Called from a timer."""
        holes = self.holes()
        rewound = []
        for tp, (committed, first) in holes.items():
            if self.suspects.get(tp) == (committed, first):
                log.warning("offsets %d..%d of %s were never handled; reading them again",
                            committed, first - 1, tp)
                await self.app.consumer.seek(tp, committed)
                rewound.append(tp)
        self.suspects = {tp: hole for tp, hole in holes.items() if tp not in rewound}
        if getattr(self.app, "in_recovery", False):  # partitions wait for the tables then
            self.idle = {}
            return len(rewound)
        idle = {}
        for tp, committed in self.backlogged().items():
            seen, checks = self.idle.get(tp, (None, 0))
            checks = checks + 1 if seen == committed else 1
            if checks < self.STALL_CHECKS:
                idle[tp] = (committed, checks)
                continue
            consumer = self.app.consumer
            paused = tp in consumer._paused_partitions
            log.warning("%s stood at offset %d with more to read (%s); reading on from there",
                        tp, committed, "paused" if paused else "not paused")
            if paused:
                consumer.resume_partitions({tp})
            await consumer.seek(tp, committed)
            rewound.append(tp)
        self.idle = idle
        return len(rewound)
