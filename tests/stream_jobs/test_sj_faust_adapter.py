"""Pins what ``stream_jobs.faust_adapter`` reads or replaces inside the installed Faust.

Each test drives the adapter against real Faust objects (an app that never connects), so a
Faust upgrade that renames the bookkeeping, moves the pre-commit flush or drops an attribute
fails here, not in the SIGKILL tests minutes later.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import faust
from faust.transport.consumer import Consumer
from faust.types import TP
from faust.types.tuples import Message

from stream_jobs.faust_adapter import (ConsumerOffsets, agent_has_sinks, aiokafka_producer,
                                       hook_before_commit)

ROOT = Path(__file__).resolve().parents[2]


def _app(name: str) -> faust.App:
    return faust.App(name, broker="kafka://127.0.0.1:1")  # never connects


def test_the_installed_faust_is_the_pinned_one() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned, = [re.split("==", d)[1] for d in deps if d.startswith("faust-streaming==")]
    assert version("faust-streaming") == pinned


def test_offsets_read_what_faust_itself_acks_and_commits_from() -> None:
    app = _app("pin-offsets")
    consumer = app.consumer
    for name in ("_acked", "_acked_index", "_committed_offset"):
        assert hasattr(consumer, name), name
    app.topics.acking_topics.add("raw")  # as subscribing an agent to "raw" does
    tp = TP("raw", 0)
    offsets = ConsumerOffsets(app)
    assert offsets.committed(tp) is None and offsets.acked() == []
    consumer._committed_offset[tp] = 5  # as a commit leaves it
    for offset in (7, 6, 9):
        assert consumer.ack(Message("raw", 0, offset, 0.0, 0, [], b"k", b"v", None))

    assert offsets.committed(tp) == 5
    assert [offsets.is_acked(tp, o) for o in (5, 6, 7, 8, 9)] == [False, True, True, False, True]
    assert offsets.acked() == [(tp, [7, 6, 9])]
    # the lists are Faust's own: what the guard edits in place is what Faust commits from
    (_, acked), = offsets.acked()
    acked[:] = [6, 7, 8, 9]
    assert consumer._new_offset(tp) == 10


def test_seek_is_faust_consumers_public_seek() -> None:
    assert inspect.iscoroutinefunction(Consumer.seek)
    assert list(inspect.signature(Consumer.seek).parameters) == ["self", "partition", "offset"]


def test_faust_awaits_the_producer_flush_before_it_commits() -> None:
    """The whole pre-commit hook rests on this order inside Faust's commit."""
    source = inspect.getsource(Consumer._commit_offsets)
    flush, commit = source.find("await self.app.producer.flush()"), source.find("self._commit(")
    assert 0 <= flush < commit


def test_the_hook_runs_ours_then_faust_producers_flush_once() -> None:
    app = _app("pin-hook")
    producer = app.producer
    order: list[str] = []
    flush = producer.flush

    async def faust_flush() -> None:
        order.append("faust")
        await flush()  # Faust's own, unstarted: returns at once

    producer.flush = faust_flush

    async def ours() -> None:
        order.append("ours")

    assert hook_before_commit(producer, ours)
    assert not hook_before_commit(producer, ours)  # a restarted agent: not wrapped twice
    asyncio.run(producer.flush())
    assert order == ["ours", "faust"]


def test_the_aiokafka_producer_is_none_until_the_worker_starts_it() -> None:
    producer = _app("pin-producer").producer
    assert "_producer" in vars(type(producer))  # declared by Faust's aiokafka driver
    assert aiokafka_producer(producer) is None


async def test_an_agent_knows_when_test_context_attached_sinks() -> None:
    app = _app("pin-sinks")
    assert agent_has_sinks() is False  # outside any agent

    @app.agent(app.topic("raw"))
    async def agent(stream):
        async for _ in stream:
            yield agent_has_sinks()

    assert agent._sinks == []
    async with agent.test_context() as ctx:
        event = await ctx.put(b"x")
        assert ctx.results[event.message.offset] is True
