"""A real Kafka broker that only its caller uses: the test session's shared one
(``conftest.kafka_broker``) and the modules that stop their broker on purpose (outages)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mayak.kafka_local import LocalBroker, free_port
from mayak.settings import Settings


@contextmanager
def private_broker(home: Path, heap_mb: int, timeout: float) -> Iterator[LocalBroker]:
    """A single-node broker in ``home`` on free ports, started (waiting up to ``timeout``
    seconds) and always stopped."""
    broker = LocalBroker(
        home=home,
        cache_dir=Settings().cache_dir,
        port=free_port(),
        controller_port=free_port(),
        heap_mb=heap_mb,
    )
    broker.start(timeout=timeout)
    try:
        yield broker
    finally:
        broker.stop()


def worker_env(data_dir: Path, bootstrap: str, prefix: str) -> dict[str, str]:
    """Settings of a worker of its own on ``bootstrap``: topics (raw, events, failed, keys on
    the Kafka key store) and consumer group named ``<prefix><random tag>``, free ports,
    sessions that close after 6 s and a sink that flushes every 0.3 s."""
    tag = f"{prefix}{uuid.uuid4().hex[:8]}"
    return {
        "MAYAK_DATA_DIR": str(data_dir),
        "MAYAK_KAFKA_BOOTSTRAP": bootstrap,
        "MAYAK_TOPIC_RAW": f"{tag}.raw",
        "MAYAK_TOPIC_EVENTS": f"{tag}.events",
        "MAYAK_TOPIC_FAILED": f"{tag}.failed",
        "MAYAK_WORKER_ID": f"worker-{tag}",
        "MAYAK_WORKER_WEB_PORT": str(free_port()),
        "MAYAK_DASHBOARDS_PORT": str(free_port()),
        "MAYAK_KEY_STORE": "kafka",
        "MAYAK_TOPIC_KEYS": f"{tag}.keys",
        "MAYAK_WORKER_SESSION_TIMEOUT_S": "6",
        "MAYAK_SINK_FLUSH_SECONDS": "0.3",
    }
