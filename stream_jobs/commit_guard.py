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

This reads and edits Faust's consumer bookkeeping through ``faust_adapter.ConsumerOffsets``
(the only module touching Faust's private names; tests/stream_jobs/test_sj_faust_adapter.py
pins them). The ``CommitCoordinator`` (``stream_jobs.commit``) owns the guard: the agents ask
it whether a message was handled before, and a timer runs ``check``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from stream_jobs.faust_adapter import ConsumerOffsets

log = logging.getLogger("mayak.stream_jobs")


class CommitGuard:
    """Finds holes below the acked offsets that stay put and seeks back to them; keeps Faust's
    acked lists sorted and free of duplicates."""

    def __init__(self, app: Any, topics: Iterable[str]) -> None:
        self.offsets = ConsumerOffsets(app)  # the app's consumer is created on first use
        self.topics = set(topics)
        self.suspects: dict = {}  # tp -> (committed, first acked) seen at the last check

    def acked(self, message: Any) -> bool:
        """Whether ``message`` was acked already (it is being read a second time)."""
        return self.offsets.is_acked(message.tp, message.offset)

    def holes(self) -> dict:
        """tp -> (committed offset, first acked offset) of every partition with a hole."""
        offsets = self.offsets
        found = {}
        for tp, acked in offsets.acked():
            committed = offsets.committed(tp)
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
                await self.offsets.seek(tp, committed)
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
            log.warning("dropped %d duplicate or committed offset(s) from Faust's acked lists",
                        dropped)
        return dropped
