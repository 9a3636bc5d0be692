"""The shared key store's topic: its settings, creating it, and whether it holds anything.

The settings make a destroyed secret's bytes leave the broker's files within a bound:
``segment.ms`` closes the active segment (on the next append: each store appends a heartbeat),
``max.compaction.lag.ms`` makes the cleaner take a closed segment at once whatever the dirty
ratio, and ``file.delete.delay.ms`` deletes the replaced files a second later. The broker's
``log.cleaner.backoff.ms`` (how often the cleaner looks) adds to the bound (README).
"""

from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from mayak.errors import MayakError
from mayak.kafka_admin import kafka_admin, unreachable

WHO = "the shared key store"


def topic_configs(segment_s: float) -> dict[str, str]:
    """The keys topic's settings: compacted, closed segments cleaned at once, old files gone
    after a second. ``delete.retention.ms`` only keeps tombstones (no secret) for readers."""
    segment_ms = str(int(segment_s * 1000))
    return {
        "cleanup.policy": "compact",
        "segment.ms": segment_ms,
        "max.compaction.lag.ms": segment_ms,
        "min.compaction.lag.ms": "0",
        "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": str(24 * 3_600_000),
        "file.delete.delay.ms": "1000",
        "compression.type": "producer",
    }


def ensure_keys_topic(bootstrap: str, topic: str, segment_s: float) -> bool:
    """Create the keys topic (1 partition, compacted) if missing, else set its configs.
    True if it was created."""
    configs = topic_configs(segment_s)
    with kafka_admin(bootstrap, who=WHO) as admin:
        try:
            if topic not in set(admin.list_topics()):
                try:
                    admin.create_topics([NewTopic(topic, 1, 1, topic_configs=configs)])
                    return True
                except TopicAlreadyExistsError:
                    pass
            # incremental (SET of these keys only); kafka-python's check of "unknown" keys
            # compares with the topic's overrides, which a fresh topic may not list yet
            admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)],
                raise_on_unknown=False,
            )
            return False
        except KafkaError as exc:  # e.g. not authorized to create topics or alter their configs
            settings = ", ".join(f"{key}={value}" for key, value in configs.items())
            raise MayakError(
                f"the shared key store could not create or configure the topic {topic} ({exc}) "
                f"-> allow this client to, or create it yourself: 1 partition, {settings}"
            ) from exc


def no_broker(bootstrap: str, exc: BaseException) -> str:
    """The shared key store's producer or consumer found no broker: what to do next."""
    return unreachable(bootstrap, exc, who=WHO)


def topic_has_records(bootstrap: str, topic: str) -> bool:
    """True if the keys topic exists and anything was ever written to it."""
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, bootstrap_timeout_ms=5_000
        )
    except KafkaError as exc:
        raise MayakError(no_broker(bootstrap, exc)) from exc
    try:
        if topic not in consumer.topics():
            return False
        tp = TopicPartition(topic, 0)
        return consumer.end_offsets([tp])[tp] > 0
    finally:
        consumer.close()
