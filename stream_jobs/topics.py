"""The Kafka topics of the stream jobs (names and partition counts from settings).

Values travel as raw bytes (JSON written with orjson); keys are kept as produced (the
collector's keyed-hash partition key), so one visitor's events stay on one partition all the
way, which the session table relies on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import faust

if TYPE_CHECKING:
    from mayak.settings import Settings


@dataclass(frozen=True)
class Topics:
    raw: faust.TopicT
    events: faust.TopicT
    failed: faust.TopicT


def define_topics(app: faust.App, settings: Settings) -> Topics:
    def topic(name: str) -> faust.TopicT:
        return app.topic(name, key_serializer="raw", value_serializer="raw",
                         partitions=settings.kafka_partitions)

    return Topics(raw=topic(settings.topic_raw), events=topic(settings.topic_events),
                  failed=topic(settings.topic_failed))
