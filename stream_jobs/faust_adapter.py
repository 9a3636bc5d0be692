"""The one module that reaches into Faust below its public API.

Mayak's exactly-once path leans on four things Faust does not offer publicly:

* the consumer's offset bookkeeping (``_acked``, ``_acked_index``, ``_committed_offset``)
  and two of its methods (``_new_offset``: which offset a commit writes for a partition;
  ``_add_gap``: offsets its fetch loop jumped over, later taken for acked): the commit guard
  reads the bookkeeping to re-read lost offsets, tidies the acked lists and replaces both
  methods so that no commit passes an offset no agent handled; it also asks the group's
  committed offsets of the aiokafka consumer under Faust's, on Faust's consumer thread
  (``_thread``, ``_ensure_consumer``, ``call_thread``) (``stream_jobs.commit_guard``);
* the pre-commit ``producer.flush()``: Faust awaits it after choosing the offsets to commit
  and before committing them (``Consumer._commit_offsets``), so replacing it with "our
  buffers, then the producer" is where the commit coordinator hooks in
  (``stream_jobs.commit``);
* the aiokafka producer under Faust's (``_producer``): the session changelog goes through it
  in record batches (``stream_jobs.changelog``);
* an agent's sinks (``_sinks``): only ``test_context()`` attaches them, and only then does the
  enrich agent yield each result.

faust-streaming is pinned in pyproject.toml; tests/stream_jobs/test_sj_faust_adapter.py checks
every name used here, and the order of flush and commit, against the installed Faust.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka.structs import TopicPartition
from faust.agents.agent import current_agent

#: set on a producer whose ``flush`` is hooked already (a restarted agent hooks again)
_HOOKED = "_mayak_hooked"
#: set on a consumer to the owner of its replaced commit rules
_RULED_BY = "_mayak_guard"

#: ``new_offset(tp, faust_new_offset)``: the offset to commit for ``tp`` (None: none)
NewOffset = Callable[[Any, Callable[[Any], int | None]], int | None]
#: ``add_gap(tp, offset_from, offset_to, faust_add_gap)``
AddGap = Callable[[Any, int, int, Callable[[Any, int, int], Awaitable[None]]], Awaitable[None]]


class ConsumerOffsets:
    """Faust's consumer bookkeeping of acked and committed offsets, per topic partition.

    Holds the app, not its consumer: the consumer is created on first use, after this.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def is_acked(self, tp: Any, offset: int) -> bool:
        """Whether ``offset`` of ``tp`` was acked and is not committed yet."""
        return offset in self.app.consumer._acked_index.get(tp, ())

    def acked(self) -> list[tuple[Any, list[int]]]:
        """(tp, acked offsets) of every partition; the lists are Faust's own (edit in place:
        Faust commits up to the first offset missing from its list)."""
        return list(self.app.consumer._acked.items())

    def acked_of(self, tp: Any) -> list[int] | None:
        """Faust's acked offsets of ``tp`` (None: none were ever acked)."""
        return self.app.consumer._acked.get(tp)

    def committed(self, tp: Any) -> int | None:
        """The committed offset of ``tp``: the next one to read (None: nothing committed, or
        a committed 0, which Faust keeps as None too)."""
        return self.app.consumer._committed_offset.get(tp)

    async def seek(self, tp: Any, offset: int) -> None:
        await self.app.consumer.seek(tp, offset)

    async def group_committed(self, tps: Iterable[Any]) -> dict[Any, int | None]:
        """The group's committed offset of each of ``tps`` (None: never committed), asked of
        the broker through the aiokafka consumer under Faust's (on its thread), all at once."""
        thread = self.app.consumer._thread
        consumer = thread._ensure_consumer()
        asked = list(tps)
        offsets = await asyncio.gather(
            *(
                thread.call_thread(consumer.committed, TopicPartition(tp.topic, tp.partition))
                for tp in asked
            )
        )
        return dict(zip(asked, offsets, strict=True))

    async def earliest(self, tps: list[Any]) -> dict[Any, int]:
        """The first offset still in the log of each partition of ``tps``."""
        return await self.app.consumer.earliest_offsets(*tps)

    def override(self, owner: object, new_offset: NewOffset, add_gap: AddGap) -> bool:
        """Replace the consumer's ``_new_offset(tp)`` and ``_add_gap(tp, from, to)`` with
        ``new_offset`` and ``add_gap``, which get Faust's own as their last argument; once per
        ``owner`` (False: done already)."""
        consumer = self.app.consumer
        if getattr(consumer, _RULED_BY, None) is owner:
            return False
        faust_new_offset, faust_add_gap = consumer._new_offset, consumer._add_gap

        def ruled_new_offset(tp: Any) -> int | None:
            return new_offset(tp, faust_new_offset)

        async def ruled_add_gap(tp: Any, offset_from: int, offset_to: int) -> None:
            await add_gap(tp, offset_from, offset_to, faust_add_gap)

        consumer._new_offset = ruled_new_offset
        consumer._add_gap = ruled_add_gap
        setattr(consumer, _RULED_BY, owner)
        return True


def hook_before_commit(
    producer: Any,
    before: Callable[[], Awaitable[object]],
    after: Callable[[], Awaitable[object]] | None = None,
) -> bool:
    """Make ``producer.flush()`` await ``before()`` first and ``after()`` last; False if
    hooked already.

    Faust commits an offset once the event is acked (when the agent asks for the next one),
    and before committing it always awaits ``producer.flush()``: hooking in there means no
    offset is committed before what ``before`` flushes is in Kafka or ClickHouse, and an
    ``after`` that raises stops the commit (Faust's flush returns even when the broker
    refused a send: it only logs it).
    """
    if getattr(producer, _HOOKED, False):  # a restarted agent
        return False
    flush = producer.flush

    async def before_then_flush() -> None:
        await before()
        await flush()
        if after is not None:
            await after()

    producer.flush = before_then_flush
    setattr(producer, _HOOKED, True)
    return True


def aiokafka_producer(producer: Any) -> Any | None:
    """The aiokafka producer under Faust's ``producer`` (None until the worker started it)."""
    return getattr(producer, "_producer", None)


def agent_has_sinks() -> bool:
    """Whether the running agent has sinks (as ``test_context()`` attaches)."""
    me: Any = current_agent()  # an Agent: the AgentT it is typed as does not declare _sinks
    return bool(me is not None and me._sinks)
