"""Creates Mayak's Kafka topics with their retention (idempotent)."""

from __future__ import annotations

from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

_HOUR_MS = 3_600_000
# raw hits carry encrypted IPs: keep them briefly; events and failures long enough to replay
RETENTION_MS = {"raw": 24 * _HOUR_MS, "events": 7 * 24 * _HOUR_MS, "failed": 14 * 24 * _HOUR_MS}


def ensure_topics(settings: Any, partitions: int | None = None) -> list[str]:
    """Create raw/events/failed topics if missing; return the names that were created."""
    names = {"raw": settings.topic_raw, "events": settings.topic_events,
             "failed": settings.topic_failed}
    parts = partitions or settings.kafka_partitions
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10000)
    try:
        existing = set(admin.list_topics())
        new = [NewTopic(name, parts, 1, topic_configs={"retention.ms": str(RETENTION_MS[kind])})
               for kind, name in names.items() if name not in existing]
        if new:
            try:
                admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
        return [t.name for t in new]
    finally:
        admin.close()
