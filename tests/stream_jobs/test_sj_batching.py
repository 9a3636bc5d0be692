"""Framing of ``mayak.events`` batches, the session write-back and the enrich/sink batching
loop, without a broker (the real-broker path is in test_sj_exactly_once.py)."""

from __future__ import annotations

import asyncio
import base64
import random
import zlib

import orjson

from stream_jobs.batching import (
    COMPRESS_ABOVE,
    MAX_MESSAGE_BYTES,
    Publisher,
    SessionWriteBack,
    event_count,
    frame,
    message_offset,
    position,
    unframe,
)
from stream_jobs.faust_adapter import hook_before_commit


def _events(n: int, pad: int = 10) -> list[dict]:
    return [{"event_id": f"e{i}", "url_path": "/x" * pad} for i in range(n)]


def test_frame_unframe_round_trip_with_positions_and_counts() -> None:
    events = _events(1234)
    framed = list(frame(events, per_message=500))
    assert [n for n, _ in framed] == [500, 500, 234]
    decoded = []
    for offset, (count, value) in enumerate(framed, start=70):
        records = unframe(3, offset, value)
        assert len(records) == count
        assert {p for p, _, _ in records} == {3}
        assert [message_offset(pos) for _, pos, _ in records] == [offset] * count
        assert [pos for _, pos, _ in records] == [position(offset, i) for i in range(count)]
        decoded += [event for _, _, event in records]
    assert decoded == events


def test_large_values_are_compressed_small_ones_are_not() -> None:
    ((_, small),) = frame(_events(2), per_message=500)
    assert small[:1] == b"[" and len(small) < COMPRESS_ABOVE
    ((_, big),) = frame(_events(400), per_message=500)
    assert big[:1] not in (b"[", b"{")
    assert orjson.loads(zlib.decompress(big)) == _events(400)


def test_a_batch_over_the_message_limit_is_split_and_nothing_is_lost() -> None:
    rng = random.Random(1)  # incompressible values: zlib cannot bring them under the limit
    events = [
        {"event_id": f"e{i}", "blob": base64.b64encode(rng.randbytes(30_000)).decode()}
        for i in range(60)
    ]
    framed = list(frame(events, per_message=60))
    assert len(framed) > 1 and sum(n for n, _ in framed) == 60
    assert all(len(value) <= MAX_MESSAGE_BYTES for _, value in framed)
    assert [e for i, (_, v) in enumerate(framed) for _, _, e in unframe(0, i, v)] == events


def test_single_event_messages_of_the_old_format_are_still_read() -> None:
    assert unframe(1, 9, orjson.dumps({"event_id": "a"})) == [
        (1, position(9, 0), {"event_id": "a"})
    ]


def test_event_count_header_as_faust_or_aiokafka_hand_it_over() -> None:
    assert event_count([("other", b"7"), ("mayak-events", b"500")]) == 500
    assert event_count({"mayak-events": b"12"}) == 12
    assert event_count(None) == 1 and event_count([]) == 1  # old messages: one event each


class _Table(dict):
    def __init__(self) -> None:
        super().__init__()
        self.data = self
        self.changelog: list[tuple[int, str, object]] = []

    async def write(self, partition: int, records: list[tuple[str, object]]) -> None:
        self.changelog += [(partition, key, value) for key, value in records]


def test_session_write_back_writes_each_changed_visitor_once_per_batch() -> None:
    table = _Table()
    table["old"] = {"n": 1}
    overlay = SessionWriteBack(table, table.write)
    overlay.partition = 1
    overlay["a"] = {"n": 1}
    overlay["a"] = {"n": 2}  # the same visitor twice in the batch: one write, the last state
    assert overlay.get("a") == {"n": 2} and "a" not in table  # read back before the flush
    overlay.partition = 0
    overlay["old"] = {"n": 1}  # unchanged state: no write at all
    assert asyncio.run(overlay.flush()) == 1
    assert table.changelog == [(1, "a", {"n": 2})]
    assert table["a"] == {"n": 2}
    assert asyncio.run(overlay.flush()) == 0


class _Sent:
    """Records ``send(value=..., partition=...)`` calls; each yields to the loop once."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, bytes]] = []
        self.counts: list[int] = []

    async def __call__(self, *, value: bytes, partition: int, headers: list) -> None:
        await asyncio.sleep(0)
        self.messages.append((partition, value))
        self.counts.append(event_count(headers))


def _publisher(per_message: int = 3):
    table = _Table()
    sent = _Sent()
    publisher = Publisher(sent, SessionWriteBack(table, table.write), per_message, partitions=2)
    return publisher, sent, table


def test_publisher_frames_per_partition_and_writes_sessions_back() -> None:
    publisher, sent, table = _publisher(per_message=3)
    publisher.write_back["visitor"] = {"n": 1}
    assert publisher.add(0, {"id": 1}) is False
    assert publisher.add(3, {"id": 2}) is False  # raw partition 3 -> events partition 1
    assert publisher.add(0, {"id": 3}) is True  # a message's worth: flush now
    assert asyncio.run(publisher.flush()) == 3
    assert [(p, [e for _, _, e in unframe(p, 0, v)]) for p, v in sent.messages] == [
        (0, [{"id": 1}, {"id": 3}]),
        (1, [{"id": 2}]),
    ]
    assert sent.counts == [2, 1]  # the header the sink sizes its inserts by
    assert table.changelog == [(0, "visitor", {"n": 1})]
    assert publisher.pending == {} and asyncio.run(publisher.flush()) == 0
    assert len(sent.messages) == 2


def test_a_flush_waits_for_the_sends_of_an_earlier_one() -> None:
    publisher, sent, _ = _publisher(per_message=2)
    for i in range(6):
        publisher.add(i % 2, {"id": i})

    async def timer_then_commit() -> int:
        _timer = asyncio.ensure_future(publisher.flush())  # noqa: RUF006 - 3 messages, one pass each
        await asyncio.sleep(0)
        await publisher.flush()  # the pre-commit flush: nothing new, but it must wait
        return len(sent.messages)

    assert asyncio.run(timer_then_commit()) == 4  # (2 + 1 per partition) all queued


def test_faust_commits_only_after_the_publisher_flushed() -> None:
    publisher, sent, _ = _publisher()
    order: list[str] = []

    class _Producer:
        async def flush(self) -> None:
            order.append(f"producer flush after {len(sent.messages)} message(s)")

    producer = _Producer()
    assert hook_before_commit(producer, publisher.flush)
    # a restarted agent does not wrap twice
    assert not hook_before_commit(producer, publisher.flush)
    publisher.add(0, {"id": 1})
    asyncio.run(producer.flush())
    assert order == ["producer flush after 1 message(s)"]


class _Batch:
    """aiokafka's BatchBuilder as far as BatchedChangelog uses it: holds up to 3 records."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes]] = []

    def append(self, *, key: bytes, value: bytes, timestamp: None) -> object | None:
        if len(self.records) == 3:
            return None
        self.records.append((key, value))
        return object()


class _AioProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, int, list[tuple[bytes, bytes]]]] = []

    def create_batch(self) -> _Batch:
        return _Batch()

    async def send_batch(self, batch: _Batch, topic: str, *, partition: int) -> asyncio.Future:
        self.sent.append((topic, partition, batch.records))
        delivered = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered


def test_changelog_batches_hold_the_records_faust_would_write() -> None:
    from types import SimpleNamespace

    from stream_jobs.changelog import BatchedChangelog

    aio = _AioProducer()
    table = SimpleNamespace(changelog_topic=SimpleNamespace(get_topic_name=lambda: "w-sessions"))
    write = BatchedChangelog(SimpleNamespace(producer=SimpleNamespace(_producer=aio)), table)
    records = [(f"v{i}", {"sid": f"s{i}", "last": i}) for i in range(7)]
    asyncio.run(write(1, records))
    assert [(topic, partition, len(batch)) for topic, partition, batch in aio.sent] == [
        ("w-sessions", 1, 3),
        ("w-sessions", 1, 3),
        ("w-sessions", 1, 1),
    ]  # full: a new batch
    # the table's json serializers read them back as the same keys and values
    assert [
        (orjson.loads(k), orjson.loads(v)) for _, _, batch in aio.sent for k, v in batch
    ] == records


def test_changelog_without_a_started_producer_goes_through_faust() -> None:
    from types import SimpleNamespace

    from stream_jobs.changelog import BatchedChangelog

    table = SimpleNamespace(sent=[])
    table.send_changelog = lambda partition, key, value: table.sent.append((partition, key, value))
    write = BatchedChangelog(SimpleNamespace(producer=SimpleNamespace(_producer=None)), table)
    asyncio.run(write(0, [("a", {"n": 1})]))
    assert table.sent == [(0, "a", {"n": 1})]


def test_a_flush_whose_caller_is_cancelled_still_sends_everything_it_took() -> None:
    # Faust cancels agents and timers when it stops, then commits what was acked: a flush
    # cancelled between taking the events and sending them lost them (stream_jobs/uncancellable)
    publisher, sent, _ = _publisher(per_message=1)
    for i in range(4):
        publisher.add(0, {"id": i})

    async def cancel_mid_flush_then_commit() -> int:
        timer = asyncio.ensure_future(publisher.flush())
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the first send is under way
        timer.cancel()
        await publisher.flush()  # the pre-commit flush
        return len(sent.messages)

    assert asyncio.run(cancel_mid_flush_then_commit()) == 4
