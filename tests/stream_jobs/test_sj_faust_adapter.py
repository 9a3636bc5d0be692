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

import aiokafka
import faust
from faust.transport.consumer import Consumer
from faust.types import TP
from faust.types.tuples import Message

from stream_jobs.faust_adapter import (
    ConsumerOffsets,
    agent_has_sinks,
    aiokafka_producer,
    hook_before_commit,
)

ROOT = Path(__file__).resolve().parents[2]


def _app(name: str) -> faust.App:
    return faust.App(name, broker="kafka://127.0.0.1:1")  # never connects


def test_the_installed_faust_is_the_pinned_one() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pinned,) = [re.split("==", d)[1] for d in deps if d.startswith("faust-streaming==")]
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
    ((_, acked),) = offsets.acked()
    acked[:] = [6, 7, 8, 9]
    assert consumer._new_offset(tp) == 10


def test_seek_and_the_replaced_methods_keep_their_signatures() -> None:
    signatures = {
        name: list(inspect.signature(getattr(Consumer, name)).parameters)
        for name in ("seek", "earliest_offsets", "_new_offset", "_add_gap")
    }
    assert signatures == {
        "seek": ["self", "partition", "offset"],
        "earliest_offsets": ["self", "partitions"],
        "_new_offset": ["self", "tp"],
        "_add_gap": ["self", "tp", "offset_from", "offset_to"],
    }
    assert inspect.iscoroutinefunction(Consumer.seek)
    assert inspect.iscoroutinefunction(Consumer._add_gap)


def test_faust_awaits_the_producer_flush_before_it_commits() -> None:
    """The whole pre-commit hook rests on this order inside Faust's commit: the offsets are
    chosen (``_new_offset`` per partition), then the producer is flushed, then they are
    committed; what is acked during the flush waits for the next commit."""
    source = inspect.getsource(Consumer._commit_offsets)
    flush, commit = source.find("await self.app.producer.flush()"), source.find("self._commit(")
    assert 0 <= flush < commit
    source = inspect.getsource(Consumer._commit_tps)
    chosen, committed = (
        source.find("self._filter_committable_offsets("),
        source.find("self._commit_offsets("),
    )
    assert 0 <= chosen < committed
    assert "self._new_offset(tp)" in inspect.getsource(Consumer._filter_committable_offsets)
    # looked up on the instance at each jump of the fetch loop: the override takes effect
    assert "await self._add_gap(tp, r_offset + 1, offset)" in inspect.getsource(
        Consumer._drain_messages
    )


def test_the_commit_rules_replace_faust_s_own_once_per_owner() -> None:
    app = _app("pin-rules")
    consumer = app.consumer
    assert hasattr(consumer, "_gap")  # what Faust's own _add_gap fills and _new_offset reads
    assert inspect.iscoroutinefunction(consumer.earliest_offsets)
    offsets, owner, calls = ConsumerOffsets(app), object(), []
    ours, other = TP("raw", 0), TP("changelog", 0)

    def new_offset(tp, faust_new_offset):
        calls.append(("new_offset", tp))
        return None if tp == ours else faust_new_offset(tp)

    async def add_gap(tp, offset_from, offset_to, faust_add_gap):
        calls.append(("add_gap", tp, offset_from, offset_to))
        if tp == other:
            await faust_add_gap(tp, offset_from, offset_to)

    assert offsets.override(owner, new_offset, add_gap)
    assert not offsets.override(owner, new_offset, add_gap)  # not wrapped twice
    for tp in (ours, other):
        consumer._committed_offset[tp] = 3
        consumer._acked[tp], consumer._acked_index[tp] = [3, 4], {3, 4}
    assert offsets.acked_of(ours) == [3, 4] and offsets.acked_of(TP("raw", 9)) is None
    assert consumer._filter_committable_offsets([ours, other]) == {other: 5}

    asyncio.run(consumer._add_gap(ours, 10, 20))
    asyncio.run(consumer._add_gap(other, 10, 20))
    assert ours not in consumer._gap and list(consumer._gap[other])  # Faust's own for other
    assert calls == [
        ("new_offset", ours),
        ("new_offset", other),
        ("add_gap", ours, 10, 20),
        ("add_gap", other, 10, 20),
    ]


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


def test_the_group_s_committed_offsets_are_asked_on_faust_s_consumer_thread() -> None:
    app = _app("pin-thread")
    thread = app.consumer._thread  # Faust's aiokafka consumer thread, before it starts
    assert inspect.iscoroutinefunction(thread.call_thread)
    assert list(inspect.signature(thread._ensure_consumer).parameters) == []
    assert inspect.iscoroutinefunction(aiokafka.AIOKafkaConsumer.committed)
    assert list(inspect.signature(aiokafka.AIOKafkaConsumer.committed).parameters) == [
        "self",
        "partition",
    ]

    class Broker:  # the aiokafka consumer: the group committed raw/0 at 40, never raw/1
        async def committed(self, tp: aiokafka.TopicPartition) -> int | None:
            return {aiokafka.TopicPartition("raw", 0): 40}.get(tp)

    calls = []

    async def call_thread(fun, *args):
        calls.append(args)
        return await fun(*args)

    thread._ensure_consumer, thread.call_thread = Broker, call_thread
    committed = asyncio.run(ConsumerOffsets(app).group_committed([TP("raw", 0), TP("raw", 1)]))
    assert committed == {TP("raw", 0): 40, TP("raw", 1): None}
    assert calls == [(aiokafka.TopicPartition("raw", 0),), (aiokafka.TopicPartition("raw", 1),)]
