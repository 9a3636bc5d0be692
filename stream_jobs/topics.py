"""Mayak's Kafka topics, in one place: which there are, how long each keeps its messages, how
they are created (``ensure_topics``: ``mayak topics``, ``mayak kafka start``, ``mayak up``)
and how the stream jobs open them (``define_topics``). Names and partition counts come from
settings.

Values travel as raw bytes (JSON written with orjson); keys are kept as produced (the
collector's keyed-hash partition key), so one visitor's events stay on one partition all the
way, which the session table relies on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import faust
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from anonymizer.keystopic import ensure_keys_topic
from mayak.kafka_admin import kafka_admin

_HOUR_MS = 3_600_000
# raw hits carry encrypted IPs: keep them briefly; events and failures long enough to replay
RETENTION_MS = {"raw": 24 * _HOUR_MS, "events": 7 * 24 * _HOUR_MS, "failed": 14 * 24 * _HOUR_MS}


def topic_names(settings: Settings) -> dict[str, str]:
    """Each topic's name by kind (the keys of ``RETENTION_MS``)."""
    return {
        "raw": settings.topic_raw,
        "events": settings.topic_events,
        "failed": settings.topic_failed,
    }


if TYPE_CHECKING:
    from mayak.settings import Settings


@dataclass(frozen=True)
class Topics:
    raw: faust.TopicT
    events: faust.TopicT
    failed: faust.TopicT


def define_topics(app: faust.App, settings: Settings) -> Topics:
    def topic(name: str) -> faust.TopicT:
        return app.topic(
            name, key_serializer="raw", value_serializer="raw", partitions=settings.kafka_partitions
        )

    return Topics(**{kind: topic(name) for kind, name in topic_names(settings).items()})


def ensure_topics(settings: Settings, partitions: int | None = None) -> list[str]:
    """Create raw/events/failed topics if missing (and the shared key store's compacted topic
    with ``MAYAK_KEY_STORE=kafka``); return the names that were created."""
    parts = partitions or settings.kafka_partitions
    with kafka_admin(settings.kafka_bootstrap) as admin:
        existing = set(admin.list_topics())
        new = [
            NewTopic(name, parts, 1, topic_configs={"retention.ms": str(RETENTION_MS[kind])})
            for kind, name in topic_names(settings).items()
            if name not in existing
        ]
        if new:
            try:
                admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
    created = [t.name for t in new]
    if settings.key_store == "kafka" and ensure_keys_topic(
        settings.kafka_bootstrap, settings.topic_keys, settings.key_store_segment_s
    ):
        created.append(settings.topic_keys)
    return created
