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

A second stall came from Faust's own bookkeeping: it adds the offsets of a "gap" (a jump in the
offsets it was handed, as after a seek) to the acked list without checking that they were acked
already, so the list held duplicates; its commit then takes the first run of consecutive
offsets, which a duplicate cuts to one or two, and the committed offset crawled on one offset
per commit (2.8 s) with thousands acked behind it: the exactly-once test's drain timed out
about one run in five. Each check therefore ``tidy``s the acked lists: sorted, without
duplicates, without offsets below the committed one.

This reads Faust's consumer bookkeeping (``_committed_offset``, ``_acked``,
``_acked_index``): faust-streaming is pinned in pyproject.toml, and
tests/stream_jobs/test_sj_commit_guard.py checks those names against the installed Faust.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("mayak.stream_jobs")


class CommitGuard:
    def __init__(self, app: Any, topics: Iterable[str]) -> None:
        self.app = app  # its consumer is created on first use
        self.topics = set(topics)
        self.suspects: dict = {}  # tp -> (committed, first acked) seen at the last check

    def acked(self, message: Any) -> bool:
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
        """Tidy the acked lists, then rewind each partition whose hole did not move since the
        last check; returns how many were rewound. Called from a timer."""
        self.tidy()
        holes = self.holes()
        rewound = []
        for tp, (committed, first) in holes.items():
            if self.suspects.get(tp) == (committed, first):
                log.warning("offsets %d..%d of %s were never handled; reading them again",
                            committed, first - 1, tp)
                await self.app.consumer.seek(tp, committed)
                rewound.append(tp)
        self.suspects = {tp: hole for tp, hole in holes.items() if tp not in rewound}
        return len(rewound)

    def tidy(self) -> int:
        """Sort Faust's acked lists and drop duplicates and offsets below the committed one
        (see the module docstring); returns how many entries were dropped."""
        consumer = self.app.consumer
        dropped = 0
        for tp, acked in list(consumer._acked.items()):
            if tp.topic not in self.topics or not acked:
                continue
            committed = consumer._committed_offset.get(tp)
            keep = sorted({o for o in acked if committed is None or o >= committed})
            if keep != acked:
                dropped += len(acked) - len(keep)
                acked[:] = keep
        if dropped:
            log.warning("dropped %d duplicate or committed offset(s) from Faust's acked lists",
                        dropped)
        return dropped
