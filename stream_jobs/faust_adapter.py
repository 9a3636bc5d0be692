"""The one module that reaches into Faust below its public API.

Mayak's exactly-once path leans on four things Faust does not offer publicly:

* the consumer's offset bookkeeping (``_acked``, ``_acked_index``, ``_committed_offset``):
  the commit guard reads it to re-read lost offsets and tidies the acked lists
  (``stream_jobs.commit_guard``);
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

from collections.abc import Awaitable, Callable
from typing import Any

from faust.agents.agent import current_agent

#: set on a producer whose ``flush`` is hooked already (a restarted agent hooks again)
_HOOKED = "_mayak_hooked"


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

    def committed(self, tp: Any) -> int | None:
        """The last offset committed for ``tp`` (None: nothing committed yet)."""
        return self.app.consumer._committed_offset.get(tp)

    async def seek(self, tp: Any, offset: int) -> None:
        await self.app.consumer.seek(tp, offset)


def hook_before_commit(producer: Any, before: Callable[[], Awaitable[object]]) -> bool:
    """Make ``producer.flush()`` await ``before()`` first; False if hooked already.

    Faust commits an offset once the event is acked (when the agent asks for the next one),
    and before committing it always awaits ``producer.flush()``: hooking in there means no
    offset is committed before what ``before`` flushes is in Kafka or ClickHouse.
    """
    if getattr(producer, _HOOKED, False):  # a restarted agent
        return False
    flush = producer.flush

    async def before_then_flush() -> None:
        await before()
        await flush()

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
