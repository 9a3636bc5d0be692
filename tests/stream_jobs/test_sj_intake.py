"""The enrich agent's intake: raw messages wait, then run through the real pipeline in order."""

from __future__ import annotations

import asyncio

import faust
import orjson

from contract import raw_seal
from contract.raw_frames import frame
from stream_jobs.batching import Publisher, SessionWriteBack, unframe
from stream_jobs.commit import CommitCoordinator
from stream_jobs.commit_guard import CommitGuard
from stream_jobs.intake import Intake
from tests.stream_jobs.samples import raw_event


class _Table(dict):
    def __init__(self) -> None:
        super().__init__()
        self.data = self
        self.changelog: list[tuple[int, str]] = []

    async def write(self, partition: int, records: list) -> None:
        self.changelog += [(partition, key) for key, _ in records]


class _Topic:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def __call__(self, **message) -> None:
        await asyncio.sleep(0)
        self.sent.append(message)


def _intake(make_pipeline, batch: int, open_raw: raw_seal.Transform = raw_seal.plain):
    table, events, failed = _Table(), _Topic(), _Topic()
    write_back = SessionWriteBack(table, table.write)
    pipeline = make_pipeline(sessions=write_back)
    publisher = Publisher(events, write_back, per_message=500, partitions=2)
    intake = Intake(pipeline, publisher, failed, batch, open_raw)
    return intake, pipeline, table, events, failed


def test_messages_wait_for_a_batch_then_run_in_order(make_pipeline) -> None:
    intake, pipeline, table, _events, failed = _intake(make_pipeline, batch=3)
    first, second = raw_event(ip="85.132.1.1"), raw_event(ip="94.20.1.1")
    assert intake.add(1, b"k1", orjson.dumps(first)) is False
    assert intake.add(0, b"k2", b'{"v": 9}') is False
    assert pipeline.counters == {} and intake.publisher.count == 0  # nothing ran yet
    assert intake.add(0, b"k3", orjson.dumps(second)) is True  # a batch: flush now

    results = asyncio.run(intake.flush())

    assert [r["event_id"] if isinstance(r, dict) else r.reason for r in results] == [
        first["id"],
        "schema",
        second["id"],
    ]
    assert intake.pending == [] and pipeline.counters == {"ok": 2, "schema": 1}
    assert [m["key"] for m in failed.sent] == [b"k2"]  # the rejection keeps its message key
    assert orjson.loads(failed.sent[0]["value"])["reason"] == "schema"
    # each event waits on its raw partition; its visitor's session goes to that partition
    assert {p: [e["event_id"] for e in evs] for p, evs in intake.publisher.pending.items()} == {
        1: [first["id"]],
        0: [second["id"]],
    }
    assert asyncio.run(intake.publisher.flush()) == 2
    assert sorted(p for p, _ in table.changelog) == [0, 1]


def test_a_collector_frame_runs_event_by_event(make_pipeline) -> None:
    intake, pipeline, _, _, failed = _intake(make_pipeline, batch=100)
    good = [raw_event() for _ in range(3)]
    intake.add(
        0,
        None,
        frame([orjson.dumps(good[0]), b'{"v": 9}', orjson.dumps(good[1]), orjson.dumps(good[2])]),
    )
    results = asyncio.run(intake.flush())
    assert len(results) == 4 and pipeline.counters == {"ok": 3, "schema": 1}
    assert [e["event_id"] for e in intake.publisher.pending[0]] == [e["id"] for e in good]
    assert len(failed.sent) == 1


def test_a_rebalance_drops_what_waits(make_pipeline) -> None:
    intake, pipeline, _, _, _ = _intake(make_pipeline, batch=100)
    intake.add(0, None, orjson.dumps(raw_event()))
    intake.drop()  # acked, never committed: whoever gets the partition reads it again
    assert asyncio.run(intake.flush()) == [] and pipeline.counters == {}


def test_a_commit_runs_the_waiting_messages_and_sends_their_events_first(make_pipeline) -> None:
    intake, _, _, events, _ = _intake(make_pipeline, batch=100)
    ok = raw_event()
    intake.add(1, None, orjson.dumps(ok))

    class Producer:
        async def flush(self) -> None:
            order.append("producer")

    order: list[str] = []
    producer = Producer()
    guard = CommitGuard(faust.App("intake", broker="kafka://127.0.0.1:1"), [])  # never connects
    CommitCoordinator(intake, intake.publisher, [], guard).install(producer)
    asyncio.run(producer.flush())  # what Faust awaits before it commits

    assert order == ["producer"] and len(events.sent) == 1
    ((_, _, sent),) = unframe(events.sent[0]["partition"], 0, events.sent[0]["value"])
    assert sent["event_id"] == ok["id"]


def test_a_sealed_frame_opens_and_a_foreign_seal_is_a_dead_letter(make_pipeline) -> None:
    key, other = b"k" * 32, b"o" * 32
    table, events, failed = _Table(), _Topic(), _Topic()
    write_back = SessionWriteBack(table, table.write)
    pipeline = make_pipeline(sessions=write_back)
    publisher = Publisher(events, write_back, per_message=500, partitions=2)
    intake = Intake(pipeline, publisher, failed, 100, raw_seal.opener(key))
    good = [raw_event() for _ in range(2)]
    intake.add(0, None, raw_seal.seal(key, frame([orjson.dumps(e) for e in good])))
    intake.add(1, b"k9", raw_seal.seal(other, orjson.dumps(raw_event())))
    intake.add(1, None, orjson.dumps(good[0] | {"id": raw_event()["id"]}))  # plain: read too

    results = asyncio.run(intake.flush())

    assert [e["event_id"] for e in intake.publisher.pending[0]] == [e["id"] for e in good]
    assert len(intake.publisher.pending[1]) == 1
    broken = results[2]
    assert (broken.reason, broken.step) == ("enrichment", "unseal")
    assert broken.detail.startswith("raw_seal:") and broken.event == {"_unparsable": True}
    assert [m["key"] for m in failed.sent] == [b"k9"]
    assert orjson.loads(failed.sent[0]["value"])["step"] == "unseal"
