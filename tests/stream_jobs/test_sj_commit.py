"""The commit coordinator: what is flushed before Faust commits, in which order, and what a
rebalance drops (Faust's side of the hook is pinned in test_sj_faust_adapter.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import faust
import orjson
import pytest
from faust.types import TP

from stream_jobs.batching import Publisher, SessionWriteBack, unframe
from stream_jobs.commit import Buffer, CommitCoordinator, Deliveries, UndeliveredMessages
from stream_jobs.commit_guard import CommitGuard
from stream_jobs.intake import Intake
from stream_jobs.sink import Lander, LandingBuffer
from tests.stream_jobs.samples import raw_event


class _Buffer:
    """Records its flushes and drops in the shared ``calls``."""

    def __init__(self, name: str, calls: list[str], fail: bool = False) -> None:
        self.name, self.calls, self.fail = name, calls, fail

    async def flush(self) -> int:
        await asyncio.sleep(0)  # let anything else waiting run: the order must still hold
        if self.fail:
            raise ConnectionError("warehouse down")
        self.calls.append(f"flush {self.name}")
        return 0

    def drop(self) -> None:
        self.calls.append(f"drop {self.name}")


class _Producer:
    """Faust's producer as far as its commit uses it."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    async def flush(self) -> None:
        self.calls.append("flush producer")


async def _faust_commit(producer: _Producer, calls: list[str]) -> None:
    """What Faust's consumer does (``Consumer._commit_offsets``): flush, then commit."""
    await producer.flush()
    calls.append("commit")


def _guard() -> CommitGuard:
    """A guard on the consumer of a real Faust app that never connects."""
    return CommitGuard(faust.App("commit", broker="kafka://127.0.0.1:1"), ["raw"])


def _coordinator(calls: list[str], fail: str = "") -> CommitCoordinator:
    intake, publisher, events, failed = (
        _Buffer(n, calls, fail=n == fail) for n in ("intake", "publisher", "events", "failed")
    )
    return CommitCoordinator(intake, publisher, [events, failed], _guard())


def test_every_buffer_is_flushed_in_order_before_the_producer_and_the_commit() -> None:
    calls: list[str] = []
    producer = _Producer(calls)
    coordinator = _coordinator(calls)
    coordinator.install(producer)
    coordinator.install(producer)  # the enrich agent restarted: still one flush per buffer
    asyncio.run(_faust_commit(producer, calls))
    assert calls == [
        "flush intake",
        "flush publisher",
        "flush events",
        "flush failed",
        "flush producer",
        "commit",
    ]


def test_a_buffer_that_cannot_flush_stops_the_commit() -> None:
    calls: list[str] = []
    producer = _Producer(calls)
    _coordinator(calls, fail="events").install(producer)
    with pytest.raises(ConnectionError):
        asyncio.run(_faust_commit(producer, calls))
    assert calls == ["flush intake", "flush publisher"]  # nothing committed


def test_a_message_the_broker_refused_stops_the_commit() -> None:
    """Faust's producer flush returns even when a send failed after its retries (it only
    logs it): the deliveries are checked after it, and the commit does not happen."""
    calls: list[str] = []
    producer = _Producer(calls)
    coordinator = _coordinator(calls)
    coordinator.install(producer)
    with pytest.raises(UndeliveredMessages, match="refused 1 of the 1 messages"):
        asyncio.run(_refused_commit(producer, calls, coordinator.deliveries))
    assert "commit" not in calls and "flush producer" in calls
    assert coordinator.deliveries.pending == []  # checked once: the worker stops anyway


async def _refused_commit(producer: _Producer, calls: list[str], deliveries: Deliveries) -> None:
    delivery: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def send(**message: object) -> asyncio.Future[str]:
        return delivery

    await deliveries.tracked(send)(value=b"{}")
    # the broker answers while the producer flushes: after its retries, a refusal
    asyncio.get_running_loop().call_soon(
        delivery.set_exception, RuntimeError("MessageSizeTooLargeError")
    )
    await _faust_commit(producer, calls)


def test_delivered_messages_let_the_commit_happen() -> None:
    calls: list[str] = []
    producer = _Producer(calls)
    coordinator = _coordinator(calls)
    coordinator.install(producer)

    async def run() -> None:
        delivery: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def send(**message: object) -> asyncio.Future[str]:
            return delivery

        await coordinator.deliveries.tracked(send)(value=b"{}")
        asyncio.get_running_loop().call_soon(delivery.set_result, "offset 7")
        await _faust_commit(producer, calls)

    asyncio.run(run())
    assert calls[-2:] == ["flush producer", "commit"]
    assert coordinator.deliveries.pending == []


def test_a_rebalance_drops_every_buffer() -> None:
    calls: list[str] = []
    _coordinator(calls).revoke(set())
    assert calls == ["drop intake", "drop publisher", "drop events", "drop failed"]


def test_the_real_buffers_share_the_interface() -> None:
    table = SimpleNamespace(data={})
    write_back = SessionWriteBack(table, lambda *_: None)
    publisher = Publisher(lambda **_: None, write_back, 10, 1)
    intake = Intake(SimpleNamespace(), publisher, lambda **_: None, 10)
    landing = LandingBuffer(Lander(None, "events", dict), list, 10)
    for buffer in (intake, publisher, write_back, landing):
        assert isinstance(buffer, Buffer), buffer


def test_a_landing_buffer_dropped_on_a_rebalance_forgets_what_its_lander_expected() -> None:
    lander = Lander(None, "events", dict)
    lander.expected, lander.landed = {0: 10}, {0: {10, 11}}
    buffer = LandingBuffer(lander, list, 10)
    buffer.add(0, 12, b"{}")
    buffer.drop()  # another worker may land partition 0 meanwhile: ask ClickHouse again
    assert buffer.pending == [] and lander.expected == {} and lander.landed == {}


def test_a_commit_sends_sessions_then_events_then_lands_then_flushes_the_producer(
    make_pipeline,
) -> None:
    """The real intake, publisher and write-back: what a commit puts out, in order."""
    calls: list[str] = []

    class Table(dict):
        def __init__(self) -> None:
            super().__init__()
            self.data = self

    async def write_changelog(partition: int, records: list) -> None:
        calls.append(f"changelog {[key for key, _ in records]}")

    async def send_events(*, value: bytes, partition: int, headers: list) -> None:
        calls.append(f"events {[e['event_id'] for _, _, e in unframe(partition, 0, value)]}")

    async def send_failed(**message) -> None:
        calls.append("failed")

    write_back = SessionWriteBack(Table(), write_changelog)
    publisher = Publisher(send_events, write_back, per_message=500, partitions=1)
    intake = Intake(make_pipeline(sessions=write_back), publisher, send_failed, batch=100)
    coordinator = CommitCoordinator(intake, publisher, [_Buffer("events", calls)], _guard())
    producer = _Producer(calls)
    coordinator.install(producer)
    event = raw_event(ip="85.132.1.1")
    intake.add(0, None, orjson.dumps(event))
    intake.add(0, None, b'{"v": 9}')

    asyncio.run(_faust_commit(producer, calls))

    visitor = next(iter(write_back.table))
    assert calls == [
        "failed",
        f"changelog {[visitor]}",
        f"events {[event['id']]}",
        "flush events",
        "flush producer",
        "commit",
    ]


def test_installed_no_commit_passes_an_offset_no_agent_handled() -> None:
    coordinator = _coordinator([])
    consumer = coordinator.guard.offsets.app.consumer
    raw = TP("raw", 0)
    consumer._committed_offset[raw] = 14  # the next offset to read: it never came
    consumer._acked[raw], consumer._acked_index[raw] = [15, 16], {15, 16}
    assert consumer._filter_committable_offsets([raw]) == {raw: 17}  # Faust alone: 14 lost
    coordinator.install(_Producer([]))
    assert consumer._filter_committable_offsets([raw]) == {}


def test_the_coordinator_asks_the_guard_what_was_handled_and_to_rewind() -> None:
    coordinator = _coordinator([])
    consumer = coordinator.guard.offsets.app.consumer
    seeks: list[int] = []

    async def seek(tp, offset: int) -> None:
        seeks.append(offset)

    consumer.seek = seek
    raw = TP("raw", 0)
    consumer._committed_offset[raw] = 2
    consumer._acked[raw], consumer._acked_index[raw] = [5, 6], {5, 6}
    assert coordinator.seen(SimpleNamespace(tp=raw, offset=6))
    assert not coordinator.seen(SimpleNamespace(tp=raw, offset=3))
    assert asyncio.run(coordinator.rewind_lost_offsets()) == 0  # first sight of the hole
    assert asyncio.run(coordinator.rewind_lost_offsets()) == 1 and seeks == [2]


def test_an_assignment_makes_the_guard_learn_where_each_partition_resumes() -> None:
    coordinator = _coordinator([])
    offsets = coordinator.guard.offsets
    fresh, known = TP("raw", 0), TP("raw", 1)

    async def group_committed(tps):  # the broker: the group committed raw/1 only
        return {tp: 7 if tp == known else None for tp in tps}

    async def earliest(tps):
        return dict.fromkeys(tps, 3)

    offsets.group_committed, offsets.earliest = group_committed, earliest

    async def rebalance() -> None:
        coordinator.assign({fresh, known})  # from the signal: must not wait for the broker
        assert coordinator.guard.starts == {}
        await coordinator.guard.learning

    asyncio.run(rebalance())
    # the group's committed offset, else the partition's first offset
    assert coordinator.guard.starts == {fresh: 3, known: 7}
    coordinator.revoke({fresh})  # looked up again at the next assignment
    assert coordinator.guard.starts == {known: 7}
