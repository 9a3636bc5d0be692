"""Explains events an exactly-once test found missing: where each one is in Kafka.

For each lost event id: the ``mayak.raw`` messages that carry it (partition/offset) against
the consumer group's committed offset of that partition, the ``mayak.events`` messages that
carry it (partition/offset/index) against theirs, and the ``mayak.failed`` messages naming it.
"Committed past a raw message and no events message" points at the enrich side, "an events
message committed past" at the sink side. Written to a file beside the test's logs.
"""

from __future__ import annotations

from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from contract import raw_seal
from contract.raw_frames import events_of
from stream_jobs.batching import unframe


def _records(bootstrap: str, topic: str) -> list[tuple[int, int, bytes]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out: list[tuple[int, int, bytes]] = []
        while any(consumer.position(tp) < end[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=1000).values():
                out += [(r.partition, r.offset, r.value or b"") for r in records]
        return out
    finally:
        consumer.close()


def _committed(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
        return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}
    finally:
        admin.close()


def _ids_of(value: object) -> list[str]:
    if isinstance(value, dict):
        return [str(value.get("id") or value.get("event_id") or "")]
    return []


def explain_lost(
    bootstrap: str,
    group: str,
    topics: tuple[str, str, str],
    lost: set[str],
    log: str = "",
    path: Path | None = None,
    open_raw: raw_seal.Transform = raw_seal.plain,
) -> str:
    """A report on each id of ``lost`` (topics: raw, events, failed); also written to
    ``path``. ``open_raw`` opens sealed raw messages (``contract.raw_seal``)."""
    import orjson

    raw_topic, events_topic, failed_topic = topics
    committed = _committed(bootstrap, group)
    raw: dict[str, list[tuple[int, int]]] = {}
    for p, o, value in _records(bootstrap, raw_topic):
        for item in events_of(open_raw(value)):
            try:
                decoded = orjson.loads(item) if isinstance(item, bytes) else item
            except orjson.JSONDecodeError:
                continue
            for event_id in _ids_of(decoded):
                if event_id in lost:
                    raw.setdefault(event_id, []).append((p, o))
    enriched: dict[str, list[tuple[int, int, int]]] = {}
    for p, o, value in _records(bootstrap, events_topic):
        try:
            events = unframe(p, o, value)
        except Exception:
            continue
        for _, pos, event in events:
            for event_id in _ids_of(event):
                if event_id in lost:
                    enriched.setdefault(event_id, []).append((p, o, pos & 0xFFFF))
    failed = {
        event_id: [
            (p, o)
            for p, o, value in _records(bootstrap, failed_topic)
            if event_id.encode() in value
        ]
        for event_id in lost
    }
    lines = [
        f"{len(lost)} lost; committed offsets of {group}: "
        f"{dict(sorted((f'{t}/{p}', o) for (t, p), o in committed.items()))}"
    ]
    for event_id in sorted(lost):
        lines.append(f"{event_id}:")
        for p, o in raw.get(event_id, []):
            c = committed.get((raw_topic, p))
            lines.append(
                f"  raw {p}/{o}: committed {c} "
                f"({'past it' if c is not None and c > o else 'not past it'})"
            )
        if event_id not in raw:
            lines.append("  in no raw message (never produced?)")
        for p, o, i in enriched.get(event_id, []):
            c = committed.get((events_topic, p))
            lines.append(
                f"  events {p}/{o}[{i}]: committed {c} "
                f"({'past it' if c is not None and c > o else 'not past it'})"
            )
        if event_id not in enriched:
            lines.append("  in no events message")
        for p, o in failed[event_id]:
            lines.append(f"  failed {p}/{o}")
    marks = [
        "were never handled",
        "duplicate(s)",
        "redelivered offset",
        "dead letter",
        "Discarded commit",
        "interrupted",
    ]
    lines.append("worker log: " + ", ".join(f"{m!r} x{log.count(m)}" for m in marks))
    report = "\n".join(lines)
    if path is not None:
        path.write_text(report + "\n")
    return report
