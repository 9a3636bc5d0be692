"""A real Kafka broker that only its caller uses: the test session's shared one
(``conftest.kafka_broker``) and the modules that stop their broker on purpose (outages)."""

from __future__ import annotations

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
