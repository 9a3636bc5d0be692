"""Replay of failed events: read ``mayak.failed`` to its current end, pick, send to ``mayak.raw``.

Selection is pure (``ReplaySelection``); reading and sending use kafka-python. Replaying the
same event twice is harmless: the events sink drops event ids already landed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from mayak.clock import SYSTEM_CLOCK, Clock


@dataclass
class ReplaySelection:
    """Chooses which failed records to replay: by reason, one per event id, replayable only."""

    reasons: set[str] | None
    not_replayable: frozenset[str]
    chosen: dict[str, dict[str, Any]] = field(default_factory=dict)
    reasons_of: dict[str, str] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)

    def offer(self, record: dict[str, Any]) -> None:
        reason, event = record.get("reason", ""), record.get("event") or {}
        wanted = reason in self.reasons if self.reasons else reason not in self.not_replayable
        if not wanted:
            self.skipped["not selected"] += 1
        elif event.get("_unparsable") or event.get("_truncated") or not event.get("id"):
            self.skipped["incomplete"] += 1
        else:
            self.chosen[str(event["id"])] = event  # the latest failure of an event wins
            self.reasons_of[str(event["id"])] = reason

    def events(self) -> list[dict[str, Any]]:
        return list(self.chosen.values())

    def by_reason(self) -> dict[str, int]:
        return dict(Counter(self.reasons_of.values()))


def read_failed(
    bootstrap: str, topic: str, timeout_s: float = 30.0, clock: Clock = SYSTEM_CLOCK
) -> Iterator[dict[str, Any]]:
    """Every record of ``topic`` from the beginning up to the end offsets seen at the start."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=int(timeout_s * 1000),
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            return
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = {tp: off for tp, off in consumer.end_offsets(partitions).items() if off > 0}
        deadline = clock.monotonic() + timeout_s
        while end and clock.monotonic() < deadline:
            for tp, messages in consumer.poll(timeout_ms=1000).items():
                deadline = clock.monotonic() + timeout_s  # a timeout for silence, not for size
                for message in messages:
                    if tp in end and message.offset < end[tp]:
                        yield orjson.loads(message.value)
            for tp in list(end):
                if consumer.position(tp) >= end[tp]:
                    del end[tp]
    finally:
        consumer.close()


def send_raw(bootstrap: str, topic: str, events: Iterable[dict[str, Any]]) -> int:
    """Produce ``events`` to ``topic`` (acks=all), keyed by event id; return how many."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    sent = 0
    try:
        for event in events:
            producer.send(topic, key=str(event["id"]).encode(), value=orjson.dumps(event))
            sent += 1
        producer.flush()
    finally:
        producer.close()
    return sent
